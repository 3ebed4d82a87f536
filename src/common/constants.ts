/**
 * Every name Twill leaves in the kernel or on disk, in one place, so that a freshly started
 * process recognises its own objects (and only those).
 */

/** Host-side veth names: prefix + 12 hex chars of sha256(containerId + "/" + ifName); 15 chars in all (IFNAMSIZ-1). */
export const VETH_PREFIX = 'twl';
export const VETH_HASH_LEN = 12;

/**
 * Temporary name of a host-side veth while ADD configures it (prefix + 12 random hex): it is renamed
 * to its `twl` name only once its alias is set, so no process ever sees an un-aliased `twl` veth.
 */
export const VETH_TMP_PREFIX = 'twn';

/** ifalias written on every host-side veth: `twill/<network>/<containerId>/<ifName>`. */
export const VETH_ALIAS_PREFIX = 'twill/';

/** ifalias on the bridge Twill created: `twill-bridge/<network>` (only such a bridge has stale gateways removed). */
export const BRIDGE_ALIAS_PREFIX = 'twill-bridge/';

/** Default bridge for `bridge` mode (flannel's name, so operators find it where they expect). */
export const DEFAULT_BRIDGE = 'cni0';

/**
 * Route ownership is by rtnetlink protocol number, one per owner, registered by name in
 * /etc/iproute2/rt_protos.d/twill.conf (dataplane/rt-protos.ts) so `ip route` shows the owner:
 * the agent's peer routes (`proto twill`, 84 = 'T') and the CNI plugin's per-pod /32 routes in
 * `routed` mode (`proto twill-cni`, 85). Each reconciler reads and deletes only its own number.
 */
export const ROUTE_PROTO = 84;
export const ROUTE_PROTO_NAME = 'twill';
export const CNI_ROUTE_PROTO = 85;
export const CNI_ROUTE_PROTO_NAME = 'twill-cni';

/** Link-local next hop of a pod's default route in `routed` mode (the Calico model). */
export const ROUTED_GATEWAY = '169.254.1.1';

/** nftables table the CNI plugin owns (masquerade for pods with ipMasq). The agent owns `inet twill`. */
export const NFT_CNI_TABLE = 'twill_cni';

/** Files shared between agent and plugin. */
export const SUBNET_FILE = '/run/twill/subnet.env';
export const DEFAULT_IPAM_DIR = '/var/lib/twill/ipam';

/** VXLAN encapsulation overhead: outer IPv4 20 + UDP 8 + VXLAN 8 + inner Ethernet 14. */
export const VXLAN_OVERHEAD = 50;
export const DEFAULT_UNDERLAY_MTU = 1500;
/** Pod MTUs Twill accepts (network config `mtu`, subnet file `TWILL_MTU`): IPv4's minimum to the largest. */
export const POD_MTU_MIN = 576;
export const POD_MTU_MAX = 65535;

/** CNI spec versions the plugin speaks, oldest first. */
export const SUPPORTED_VERSIONS = ['0.3.0', '0.3.1', '0.4.0', '1.0.0', '1.1.0'] as const;
export type CniVersion = (typeof SUPPORTED_VERSIONS)[number];

/** Datastore layout (etcd keys; Kubernetes objects use the same names). */
export const DATASTORE_PREFIX = '/twill/';
export const CONFIG_KEY = '/twill/config';
export const SUBNETS_PREFIX = '/twill/subnets/';
/** Subnet lease time to live and how long before expiry the agent renews. */
export const LEASE_TTL_SECONDS = 24 * 3600;
export const LEASE_RENEW_MARGIN_SECONDS = 3600;

/** Node agent kernel objects. */
export const VXLAN_DEVICE_PREFIX = 'twill.';
export const DEFAULT_VXLAN_VNI = 1;
export const DEFAULT_VXLAN_PORT = 8472;
/** nftables table the agent owns and replaces atomically. */
export const NFT_AGENT_TABLE = 'twill';
