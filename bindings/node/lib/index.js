// SPDX-License-Identifier: MIT
// socketbridge for Node: fake, watch and answer any process in a tree, live.
// A thin client of `socketbridge serve` (docs/control.md): the C supervisor
// keeps every trust decision; this package turns its calls into Node
// streams and your answers into its messages.
export { Bridge, HandlerError } from './bridge.js';
export { Call, Finished } from './call.js';
export { BridgeError } from './channel.js';
export {
  ProcessProxyConnection, ProxyProcessServer, createProxyProcessServer,
} from './proxy.js';
export { SendError, getProxyCommandPath, send } from './send.js';
