"""The MCP server (``frameseek mcp``): frameseek's search, index, transcripts, library and exports as Model
Context Protocol tools for assistants, over stdio or streamable HTTP.

A door: it imports only ``frameseek.api`` and its own modules. ``backend`` does the work (plain, typed,
synchronous calls of the API, every source checked), ``server`` turns it into tools and resources on the
official SDK's ``MCPServer``, ``http`` guards the HTTP transport (token, loopback), ``command`` starts it.
"""
