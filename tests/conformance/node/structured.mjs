// Vercel AI SDK structured output (generateObject) against CAPTURE_BASE_URL.
// Usage: node structured.mjs openai|openai-chat|anthropic
import { generateObject } from "ai";
import { createOpenAI } from "@ai-sdk/openai";
import { createAnthropic } from "@ai-sdk/anthropic";
import { z } from "zod";

const base = process.env.CAPTURE_BASE_URL + "/v1";
const apiKey = "sk-capture-dummy";
const which = process.argv[2];
const model =
  which === "anthropic"
    ? createAnthropic({ baseURL: base, apiKey })("claude-sonnet-4-5")
    : which === "openai-chat"
      ? createOpenAI({ baseURL: base, apiKey }).chat("gpt-4o-mini")
      : createOpenAI({ baseURL: base, apiKey })("gpt-4o-mini");
const { object } = await generateObject({
  model,
  schema: z.object({ city: z.string(), population: z.number(), rivers: z.array(z.string()) }),
  prompt: "Describe Amsterdam: its population and its rivers.",
});
console.log(JSON.stringify(object));
