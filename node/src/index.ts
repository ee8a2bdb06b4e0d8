export { ConfigError, loadNodeConfig, type NodeConfig, type NodeConfigInput, validateNodeConfig } from './config/config.ts';
export { KEYVA_VERSION, type NodeDeps, type RunningNode, startNode } from './node.ts';
