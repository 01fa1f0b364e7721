/**
 * Leases in Redis: at most one holder per key, with an expiry, so that among several instances exactly
 * one does a given piece of work (polling one SageMaker job). The holder renews before expiry; when it
 * dies the key expires and another instance takes over.
 *
 * A lease is `SET key <owner> NX PX ttl`. Renewal and release only touch the key while it still holds
 * our owner id (compare-and-renew / compare-and-delete in Lua), so an instance that lost its lease
 * (e.g. after a long pause) can never extend or delete the new holder's.
 */
import type { Redis } from "ioredis";
import type { LeaseStore } from "../store/leases.js";

export type { LeaseStore };

const RENEW_IF_OWNER = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("pexpire", KEYS[1], ARGV[2]) else return 0 end`;
const RELEASE_IF_OWNER = `if redis.call("get", KEYS[1]) == ARGV[1] then return redis.call("del", KEYS[1]) else return 0 end`;

export class RedisLeases implements LeaseStore {
  constructor(
    private readonly client: Redis,
    readonly owner: string,
    readonly ttlMs: number,
  ) {
    if (!Number.isInteger(ttlMs) || ttlMs < 1) throw new RangeError("lease ttlMs must be a positive integer");
  }

  async acquire(key: string): Promise<boolean> {
    const set = await this.client.set(key, this.owner, "PX", this.ttlMs, "NX");
    if (set === "OK") return true;
    return this.renew(key);
  }

  async renew(key: string): Promise<boolean> {
    const renewed = await this.client.eval(RENEW_IF_OWNER, 1, key, this.owner, String(this.ttlMs));
    return renewed === 1;
  }

  async release(key: string): Promise<void> {
    await this.client.eval(RELEASE_IF_OWNER, 1, key, this.owner);
  }

  async holder(key: string): Promise<string | null> {
    return this.client.get(key);
  }
}
