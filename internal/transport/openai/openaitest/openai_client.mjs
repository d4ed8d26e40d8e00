// openai_client.mjs drives an OpenAI-compatible server with the official `openai` npm
// client and prints one JSON line of what it saw, for a Go test to assert.
//
//   node openai_client.mjs BASE_URL MODEL EMBED_MODEL [LIMITED_MODEL]
//
// BASE_URL ends in /v1. MODEL answers chat and completions, EMBED_MODEL embeddings.
// LIMITED_MODEL, when given, is a model the server answers 429 for (with the key in
// FERRY_LIMITED_KEY if set). FERRY_API_KEY is the key of every other call ("sk-test"
// if unset). OPENAI_NODE_PREFIX is where `npm install --prefix` put the client (else it
// is resolved from the working directory).
//
// FERRY_TOOLS_MODEL, when set, is a model to call with tools: its answers (tool calls,
// whole and streamed, the stream put together by the client's own helper) are recorded
// under "tools" and "toolsStream"; MODEL is then also asked with tools, which a model
// without them refuses ("toolsRefused").
//
// The script is generic: it asserts nothing about the model's text, only records it,
// so it runs against a fake backend and against a real server with a real model alike.
// Each case catches its own failure and records it, so one broken case does not hide
// the others.
import { createRequire } from 'node:module';
import path from 'node:path';

const [baseURL, model, embedModel, limitedModel] = process.argv.slice(2);
if (!baseURL || !model || !embedModel) {
  console.error('usage: node openai_client.mjs BASE_URL MODEL EMBED_MODEL [LIMITED_MODEL]');
  process.exit(2);
}
const prefix = process.env.OPENAI_NODE_PREFIX || process.cwd();
const require = createRequire(path.join(prefix, 'package.json'));
const OpenAI = require('openai');

const apiKey = process.env.FERRY_API_KEY || 'sk-test';
const client = new OpenAI({ baseURL, apiKey, maxRetries: 0, timeout: 60_000 });
const messages = [{ role: 'user', content: 'Say hello.' }];

// describeError keeps what a caller of the client relies on.
function describeError(e) {
  return { class: e?.constructor?.name, status: e?.status ?? null, code: e?.code ?? null, param: e?.param ?? null, type: e?.type ?? null, message: String(e?.message ?? e) };
}

async function run(name, results, fn) {
  try {
    results[name] = await fn();
  } catch (e) {
    results[name] = { failed: describeError(e) };
  }
}

// expectError runs fn, which must throw, and describes the error.
async function expectError(fn) {
  try {
    const v = await fn();
    return { unexpectedSuccess: JSON.stringify(v).slice(0, 200) };
  } catch (e) {
    return describeError(e);
  }
}

// gather reads a stream and sums up its chunks.
async function gather(stream, textOf) {
  const out = { chunks: 0, text: '', firstRole: null, finishReasons: [], usage: null, usageChunks: 0, emptyChoiceChunks: 0, objects: [] };
  for await (const chunk of stream) {
    out.chunks++;
    if (!out.objects.includes(chunk.object)) out.objects.push(chunk.object);
    if (chunk.usage) {
      out.usage = chunk.usage;
      out.usageChunks++;
    }
    if (chunk.choices.length === 0) out.emptyChoiceChunks++;
    for (const c of chunk.choices) {
      if (out.firstRole === null && c.delta?.role) out.firstRole = c.delta.role;
      out.text += textOf(c) ?? '';
      if (c.finish_reason) out.finishReasons.push(c.finish_reason);
    }
  }
  return out;
}

const results = {};

await run('chat', results, async () => {
  const r = await client.chat.completions.create({ model, messages, max_tokens: 8 });
  return { id: r.id, object: r.object, model: r.model, role: r.choices[0].message.role, content: r.choices[0].message.content, finishReason: r.choices[0].finish_reason, usage: r.usage };
});

await run('chatStream', results, async () => {
  const s = await client.chat.completions.create({ model, messages, max_tokens: 8, stream: true, stream_options: { include_usage: true } });
  return gather(s, (c) => c.delta?.content);
});

await run('completion', results, async () => {
  const r = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 8 });
  return { id: r.id, object: r.object, model: r.model, text: r.choices[0].text, finishReason: r.choices[0].finish_reason, usage: r.usage };
});

await run('completionStream', results, async () => {
  const s = await client.completions.create({ model, prompt: 'Once upon a time', max_tokens: 8, stream: true });
  return gather(s, (c) => c.text);
});

for (const [name, extra] of [['embedBase64', {}], ['embedFloat', { encoding_format: 'float' }]]) {
  await run(name, results, async () => {
    const r = await client.embeddings.create({ model: embedModel, input: ['hello', 'world'], ...extra });
    const v = r.data[0].embedding;
    return { object: r.object, count: r.data.length, isArray: Array.isArray(v), dims: v.length, head: Array.from(v.slice(0, 4)), usage: r.usage };
  });
}

await run('models', results, async () => {
  const ids = [];
  for await (const m of client.models.list()) ids.push({ id: m.id, object: m.object, owned_by: m.owned_by });
  const one = await client.models.retrieve(model);
  return { data: ids, retrieved: one.id };
});

await run('contextLength', results, () => expectError(() => client.chat.completions.create({ model, messages, max_tokens: 10_000_000 })));
await run('notFound', results, () => expectError(() => client.chat.completions.create({ model: 'no-such-model-ferry-test', messages })));
if (limitedModel) {
  const limited = new OpenAI({ baseURL, apiKey: process.env.FERRY_LIMITED_KEY || apiKey, maxRetries: 0, timeout: 60_000 });
  await run('rateLimited', results, () => expectError(() => limited.chat.completions.create({ model: limitedModel, messages })));
}

const toolsModel = process.env.FERRY_TOOLS_MODEL;
if (toolsModel) {
  const tools = [{ type: 'function', function: { name: 'get_weather', description: 'The weather in a city', parameters: { type: 'object', properties: { city: { type: 'string' } }, required: ['city'] } } }];
  const asked = [{ role: 'user', content: 'Weather in Paris?' }];
  const answered = [...asked,
    { role: 'assistant', content: null, tool_calls: [{ id: 'call_0', type: 'function', function: { name: 'get_weather', arguments: '{"city":"Paris"}' } }] },
    { role: 'tool', tool_call_id: 'call_0', content: '18 C, sunny' }];
  const calls = (m) => (m.tool_calls ?? []).map((c) => ({ id: c.id, type: c.type, name: c.function.name, arguments: c.function.arguments }));
  await run('tools', results, async () => {
    const r = await client.chat.completions.create({ model: toolsModel, messages: answered, tools, tool_choice: 'auto' });
    return { content: r.choices[0].message.content, calls: calls(r.choices[0].message), finishReason: r.choices[0].finish_reason };
  });
  await run('toolsStream', results, async () => {
    const s = client.chat.completions.stream({ model: toolsModel, messages: asked, tools, stream_options: { include_usage: true } });
    const r = await s.finalChatCompletion();
    return { content: r.choices[0].message.content, calls: calls(r.choices[0].message), finishReason: r.choices[0].finish_reason };
  });
  await run('toolsRefused', results, () => expectError(() => client.chat.completions.create({ model, messages: asked, tools })));
}

console.log(JSON.stringify(results));
