import { normalizeEquipmentId } from './config.js';

export interface RoutedDevice {
  deviceId: string;
  equipmentId?: string | undefined;
}

/**
 * Maps OBX-18 equipment ids to configured device ids. A listener with exactly
 * one device and no equipmentId takes every message.
 */
export class DeviceRouter {
  readonly #byEquipment = new Map<string, string>();
  readonly #catchAll: string | undefined;

  constructor(devices: readonly RoutedDevice[]) {
    const only = devices.length === 1 ? devices[0]! : undefined;
    this.#catchAll = only && !only.equipmentId ? only.deviceId : undefined;
    for (const d of devices) {
      if (!d.equipmentId) {
        if (devices.length > 1) throw new Error(`device ${d.deviceId} shares an HL7 listener, so it needs an equipmentId`);
        continue;
      }
      const key = normalizeEquipmentId(d.equipmentId);
      const other = this.#byEquipment.get(key);
      if (other) throw new Error(`devices ${other} and ${d.deviceId} have the same equipmentId`);
      this.#byEquipment.set(key, d.deviceId);
    }
  }

  /** The device a message or observation belongs to, or undefined when nobody takes it. */
  route(equipmentId: string | undefined): string | undefined {
    if (this.#catchAll) return this.#catchAll;
    return equipmentId === undefined ? undefined : this.#byEquipment.get(normalizeEquipmentId(equipmentId));
  }
}
