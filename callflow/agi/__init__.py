"""FastAGI protocol (pure) and its asyncio server."""
