import type { MlOrderResource, MlShipmentResource } from '../domain/mercadolibre-order.mapper';
import { requestJson } from './http-json';

/** MercadoLibre orders and shipments, always read with the owning seller's token (that is the authenticity check). */
export interface MercadoLibreClient {
  getOrder(orderId: string, sellerToken: string): Promise<MlOrderResource>;
  getShipment(shipmentId: string, sellerToken: string): Promise<MlShipmentResource>;
}

export function createMercadoLibreClient(options: { baseUrl: string }): MercadoLibreClient {
  const get = <T>(path: string, token: string, extra: Record<string, string> = {}) =>
    requestJson<T>('MERCADOLIBRE', new URL(path, options.baseUrl).toString(), { headers: { Authorization: `Bearer ${token}`, Accept: 'application/json', ...extra } });
  return {
    getOrder: (orderId, token) => get(`/orders/${encodeURIComponent(orderId)}`, token),
    getShipment: (shipmentId, token) => get(`/shipments/${encodeURIComponent(shipmentId)}`, token, { 'x-format-new': 'true' }),
  };
}
