// The agent's version, sent in every Hello.
export const AGENT_VERSION = '0.1.0';
