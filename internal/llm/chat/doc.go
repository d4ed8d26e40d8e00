// Package chat renders a conversation (llm.Message list) into the prompt text a model
// was trained on, and names the stop strings that format implies. Built-in formats
// are plain (for base models such as GPT-2), chatml, llama3 and mistral; a model may
// bring its own as a Go text/template over .Messages and .AddGenerationPrompt.
// Hugging Face's Jinja chat templates (tokenizer_config.json's chat_template) are not
// supported: Parse refuses them, and a model folder that needs one must carry the
// equivalent Go template.
package chat
