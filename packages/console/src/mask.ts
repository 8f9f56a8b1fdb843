// Masking lives with the timeline in @postsale/cli, so the CLI and the console hide the same fields.
export { isPersonalKey, maskPersonal, maskValue } from '@postsale/cli';
