import type { MercadoLibreApi } from '../domain/ports';
import { requestJson } from './http-json';

export type MercadoLibreClient = MercadoLibreApi;

export function createMercadoLibreClient(options: { baseUrl: string }): MercadoLibreClient {
  const get = <T>(path: string, token: string, extra: Record<string, string> = {}) =>
    requestJson<T>('MERCADOLIBRE', new URL(path, options.baseUrl).toString(), { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...extra } });
  return {
    getOrder: (orderId, token) => get(`/orders/${encodeURIComponent(orderId)}`, token),
    getShipment: (shipmentId, token) => get(`/shipments/${encodeURIComponent(shipmentId)}`, token, { 'x-format-new': 'true' }),
  };
}
