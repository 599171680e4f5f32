"""The enterprise-side agent (`directlink agent`): see docs/agent.md."""
