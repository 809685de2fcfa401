/** The states of a network; only tasks on hubs of `active` networks are claimable. */
export const networkStates = ['active', 'inactive', 'invalid', 'deleted'] as const;
export type NetworkState = (typeof networkStates)[number];
