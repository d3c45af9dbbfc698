"""The counsellors' console: conversations, accounts, supporting material."""
