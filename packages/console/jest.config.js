/** One config for every package: TypeScript through swc, integration tests get generous deadlines. */
module.exports = require('../../jest.preset.js');
