"""The only place platform libraries (Telegram, WeChat, the web server) are imported."""
