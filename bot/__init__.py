"""fanzha's conversation core, storage and platform adapters."""
