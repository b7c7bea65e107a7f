"""The Ray Serve captioning endpoint (OpenAI chat-completions protocol)."""
