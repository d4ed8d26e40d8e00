// Package openaitest runs the official openai npm client against a server, for the
// tests of the OpenAI-compatible edge and of the whole server: it installs the pinned
// client once into the user's cache directory and runs openai_client.mjs (chat,
// completions, streams with usage, embeddings by base64 and float, the model list, and
// the typed errors) against a base URL, returning the script's JSON line of results.
// Only tests import it.
package openaitest
