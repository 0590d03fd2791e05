/* test_llama_proto.c — request bodies, stream events and error bodies of llama-server.
 *
 * The event and error samples were captured from the llama-server this project builds
 * (llama.cpp de3ff81, tools/server) serving a tiny random-weight model. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <stdlib.h>
#include <string.h>

#include "llama_fast.h"
#include "llama_proto.h"

/* POST /completion, n_predict 3: three tokens, then the final event (stop_type limit). */
static const char *const completion_stream[] = {
    "{\"index\":0,\"content\":\"\xc3\xa5"
    "ng\",\"tokens\":[10000],\"stop\":false,\"id_slot\":"
    "-1,\"tokens_predicted\":1,\"tokens_evaluated\":2}",
    "{\"index\":0,\"content\":\"animation\",\"tokens\":[18962],\"stop\":false,\"id_slot\":-1,"
    "\"tokens_predicted\":2,\"tokens_evaluated\":2}",
    "{\"index\":0,\"content\":\" Gy\",\"tokens\":[12842],\"stop\":false,\"id_slot\":-1,\"toke"
    "ns_predicted\":3,\"tokens_evaluated\":2}",
    "{\"index\":0,\"content\":\"\",\"tokens\":[],\"id_slot\":1,\"stop\":true,\"model\":\"tiny"
    ".gguf\",\"tokens_predicted\":3,\"tokens_evaluated\":2,\"generation_settings\":{\"seed\":"
    "4294967295,\"temperature\":0.800000011920929,\"dynatemp_range\":0.0,\"dynatemp_exponent\""
    ":1.0,\"top_k\":40,\"top_p\":0.949999988079071,\"min_p\":0.05000000074505806,\"top_n_sigm"
    "a\":-1.0,\"xtc_probability\":0.0,\"xtc_threshold\":0.10000000149011612,\"typical_p\":1.0"
    ",\"repeat_last_n\":64,\"repeat_penalty\":1.0,\"presence_penalty\":0.0,\"frequency_penalt"
    "y\":0.0,\"dry_multiplier\":0.0,\"dry_base\":1.75,\"dry_allowed_length\":2,\"dry_penalty_"
    "last_n\":64,\"dry_sequence_breakers\":[\"\\n\",\":\",\"\\\"\",\"*\"],\"mirostat\":0,\"mi"
    "rostat_tau\":5.0,\"mirostat_eta\":0.10000000149011612,\"adaptive_target\":-1.0,\"adaptiv"
    "e_decay\":0.8999999761581421,\"stop\":[],\"max_tokens\":3,\"n_predict\":3,\"n_keep\":0,\""
    "n_discard\":0,\"ignore_eos\":false,\"stream\":true,\"logit_bias\":[],\"n_probs\":0,\"min"
    "_keep\":0,\"grammar\":\"\",\"grammar_lazy\":false,\"grammar_triggers\":[],\"preserved_to"
    "kens\":[],\"chat_format\":\"Content-only\",\"reasoning_format\":\"deepseek\",\"reasoning"
    "_in_content\":false,\"generation_prompt\":\"\",\"samplers\":[\"penalties\",\"dry\",\"top"
    "_n_sigma\",\"top_k\",\"typ_p\",\"top_p\",\"min_p\",\"xtc\",\"temperature\"],\"speculativ"
    "e.types\":\"none\",\"timings_per_token\":false,\"post_sampling_probs\":false,\"backend_s"
    "ampling\":false,\"lora\":[]},\"prompt\":\"<s> Hello\",\"has_new_line\":false,\"truncated"
    "\":false,\"stop_type\":\"limit\",\"stopping_word\":\"\",\"tokens_cached\":4,\"timings\":"
    "{\"cache_n\":0,\"prompt_n\":2,\"prompt_ms\":1.075,\"prompt_per_token_ms\":0.5375,\"promp"
    "t_per_second\":1860.46511627907,\"predicted_n\":3,\"predicted_ms\":4.992,\"predicted_per"
    "_token_ms\":2.496,\"predicted_per_second\":400.64102564102564}}",
};

/* POST /completion with stop ["e"]: the token that completed the stop word carries
 * timings, then the final event says stop_type word. */
static const char word_last_partial[] =
    "{\"index\":0,\"content\":\" Rob\",\"tokens\":[4755],\"stop\":false,\"id_slot\":-1,\"toke"
    "ns_predicted\":4,\"tokens_evaluated\":2,\"timings\":{\"cache_n\":1,\"prompt_n\":1,\"prom"
    "pt_ms\":2.345,\"prompt_per_token_ms\":2.345,\"prompt_per_second\":426.43923240938165,\"p"
    "redicted_n\":4,\"predicted_ms\":2.655,\"predicted_per_token_ms\":0.8849999999999999,\"pr"
    "edicted_per_second\":1129.943502824859}}";
static const char word_final[] =
    "{\"index\":0,\"content\":\"\",\"tokens\":[],\"id_slot\":0,\"stop\":true,\"model\":\"tiny"
    ".gguf\",\"tokens_predicted\":4,\"tokens_evaluated\":2,\"generation_settings\":{\"seed\":"
    "3,\"temperature\":0.5,\"dynatemp_range\":0.0,\"dynatemp_exponent\":1.0,\"top_k\":40,\"to"
    "p_p\":0.949999988079071,\"min_p\":0.05000000074505806,\"top_n_sigma\":-1.0,\"xtc_probabi"
    "lity\":0.0,\"xtc_threshold\":0.10000000149011612,\"typical_p\":1.0,\"repeat_last_n\":64,"
    "\"repeat_penalty\":1.0,\"presence_penalty\":0.0,\"frequency_penalty\":0.0,\"dry_multipli"
    "er\":0.0,\"dry_base\":1.75,\"dry_allowed_length\":2,\"dry_penalty_last_n\":64,\"dry_sequ"
    "ence_breakers\":[\"\\n\",\":\",\"\\\"\",\"*\"],\"mirostat\":0,\"mirostat_tau\":5.0,\"mir"
    "ostat_eta\":0.10000000149011612,\"adaptive_target\":-1.0,\"adaptive_decay\":0.8999999761"
    "581421,\"stop\":[\"e\"],\"max_tokens\":30,\"n_predict\":30,\"n_keep\":0,\"n_discard\":0,"
    "\"ignore_eos\":false,\"stream\":true,\"logit_bias\":[],\"n_probs\":0,\"min_keep\":0,\"gr"
    "ammar\":\"\",\"grammar_lazy\":false,\"grammar_triggers\":[],\"preserved_tokens\":[],\"ch"
    "at_format\":\"Content-only\",\"reasoning_format\":\"deepseek\",\"reasoning_in_content\":"
    "false,\"generation_prompt\":\"\",\"samplers\":[\"penalties\",\"dry\",\"top_n_sigma\",\"t"
    "op_k\",\"typ_p\",\"top_p\",\"min_p\",\"xtc\",\"temperature\"],\"speculative.types\":\"no"
    "ne\",\"timings_per_token\":false,\"post_sampling_probs\":false,\"backend_sampling\":fals"
    "e,\"lora\":[]},\"prompt\":\"<s> Hi\",\"has_new_line\":false,\"truncated\":false,\"stop_t"
    "ype\":\"word\",\"stopping_word\":\"e\",\"tokens_cached\":5,\"timings\":{\"cache_n\":1,\""
    "prompt_n\":1,\"prompt_ms\":2.345,\"prompt_per_token_ms\":2.345,\"prompt_per_second\":426"
    ".43923240938165,\"predicted_n\":4,\"predicted_ms\":2.655,\"predicted_per_token_ms\":0.88"
    "49999999999999,\"predicted_per_second\":1129.943502824859}}";

/* POST /v1/chat/completions, max_tokens 2, stream_options.include_usage. */
static const char *const chat_stream[] = {
    "{\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"role\":\"assistant\",\"co"
    "ntent\":null}}],\"created\":1795636198,\"id\":\"chatcmpl-gmN0mmd5BPFj6aD5rjbmSSKAIFEiXPw"
    "g\",\"model\":\"tiny.gguf\",\"system_fingerprint\":\"b1-de3ff81\",\"object\":\"chat.comp"
    "letion.chunk\"}",
    "{\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\" cloth\"}}],\""
    "created\":1795636198,\"id\":\"chatcmpl-gmN0mmd5BPFj6aD5rjbmSSKAIFEiXPwg\",\"model\":\"ti"
    "ny.gguf\",\"system_fingerprint\":\"b1-de3ff81\",\"object\":\"chat.completion.chunk\"}",
    "{\"choices\":[{\"finish_reason\":null,\"index\":0,\"delta\":{\"content\":\"param\"}}],\""
    "created\":1795636198,\"id\":\"chatcmpl-gmN0mmd5BPFj6aD5rjbmSSKAIFEiXPwg\",\"model\":\"ti"
    "ny.gguf\",\"system_fingerprint\":\"b1-de3ff81\",\"object\":\"chat.completion.chunk\"}",
    "{\"choices\":[{\"finish_reason\":\"length\",\"index\":0,\"delta\":{}}],\"created\":17956"
    "36198,\"id\":\"chatcmpl-gmN0mmd5BPFj6aD5rjbmSSKAIFEiXPwg\",\"model\":\"tiny.gguf\",\"sys"
    "tem_fingerprint\":\"b1-de3ff81\",\"object\":\"chat.completion.chunk\"}",
    "{\"choices\":[],\"created\":1795636198,\"id\":\"chatcmpl-gmN0mmd5BPFj6aD5rjbmSSKAIFEiXPw"
    "g\",\"model\":\"tiny.gguf\",\"system_fingerprint\":\"b1-de3ff81\",\"object\":\"chat.comp"
    "letion.chunk\",\"usage\":{\"completion_tokens\":2,\"prompt_tokens\":29,\"total_tokens\":"
    "31,\"prompt_tokens_details\":{\"cached_tokens\":0}},\"timings\":{\"cache_n\":0,\"prompt_"
    "n\":29,\"prompt_ms\":1.401,\"prompt_per_token_ms\":0.048310344827586206,\"prompt_per_sec"
    "ond\":20699.500356887937,\"predicted_n\":2,\"predicted_ms\":0.64,\"predicted_per_token_m"
    "s\":0.64,\"predicted_per_second\":1562.5}}",
    "[DONE]",
};

/* The final event when the request names response_fields, as llama_request_json does. */
static const char trimmed_final[] =
    "{\"content\":\"\",\"stop\":true,\"stop_type\":\"limit\",\"tokens_predicted\":2,\"tokens_"
    "evaluated\":2,\"timings\":{\"cache_n\":0,\"prompt_n\":2,\"prompt_ms\":319.28,\"prompt_per_"
    "token_ms\":159.64,\"prompt_per_second\":6.264094211976949,\"predicted_n\":2,\"predicted_ms"
    "\":190.007,\"predicted_per_token_ms\":190.007,\"predicted_per_second\":5.262963996063303}}";

/* A mid-stream failure: llama-server sends {"error": {...}} as an SSE event and ends the
 * stream (server-context.cpp, handle_completions_impl). */
static const char error_event[] =
    "{\"error\":{\"code\":500,\"message\":\"this custom template is not supported\",\"type\":"
    "\"server_error\"}}";

static const char context_error_body[] =
    "{\"error\":{\"code\":400,\"message\":\"request (302 tokens) exceeds the available context "
    "size (256 tokens), try increasing it\",\"type\":\"exceed_context_size_error\","
    "\"n_prompt_tokens\":302,\"n_ctx\":256}}";

static const struct llama_caps caps = {.max_tokens = 100, .default_max_tokens = 16};

/* ---- helpers ---- */

static json_t *request_of(const struct job *job, const struct llama_caps *c)
{
    char *text = llama_request_json(job, c);
    assert_non_null(text);
    json_error_t err;
    json_t *root = json_loads(text, JSON_ALLOW_NUL, &err);
    assert_non_null(root);
    free(text);
    return root;
}

static int64_t int_at(const json_t *obj, const char *key)
{
    const json_t *v = json_object_get(obj, key);
    assert_true(json_is_integer(v));
    return json_integer_value(v);
}

static struct llama_event parse_ok(enum llama_endpoint ep, const char *data)
{
    struct llama_event ev;
    char msg[256] = "";
    int rc = llama_parse_event(ep, data, strlen(data), &ev, msg, sizeof(msg));
    if (rc != 0)
        fail_msg("event refused (%d): %s", rc, msg);
    return ev;
}

static void expect_bad_event(enum llama_endpoint ep, const char *data, const char *why)
{
    struct llama_event ev;
    char msg[256] = "";
    assert_int_equal(llama_parse_event(ep, data, strlen(data), &ev, msg, sizeof(msg)), -1);
    assert_null(ev.text);
    assert_false(ev.final);
    if (!strstr(msg, why))
        fail_msg("message \"%s\" lacks \"%s\"", msg, why);
}

/* ---- requests ---- */

static void test_endpoint(void **state)
{
    (void)state;
    struct job prompt = {.prompt = "x", .prompt_len = 1};
    struct job_message m = {.role = "user", .content = "x"};
    struct job chat = {.messages = &m, .n_messages = 1};
    assert_int_equal(llama_endpoint_for(&prompt), LLAMA_COMPLETION);
    assert_int_equal(llama_endpoint_for(&chat), LLAMA_CHAT);
    assert_string_equal(llama_endpoint_path(LLAMA_COMPLETION), "/completion");
    assert_string_equal(llama_endpoint_path(LLAMA_CHAT), "/v1/chat/completions");
}

static void test_prompt_request_minimal(void **state)
{
    (void)state;
    struct job job = {.prompt = "Hello", .prompt_len = 5};
    char *text = llama_request_json(&job, &caps);
    assert_non_null(text);
    assert_string_equal(text, "{\"prompt\":\"Hello\",\"n_predict\":16,"
                              "\"response_fields\":[\"content\",\"stop\",\"stop_type\","
                              "\"tokens_predicted\",\"tokens_evaluated\",\"timings\"],"
                              "\"stream\":true,\"cache_prompt\":true}");
    free(text);
}

static void test_prompt_request_full(void **state)
{
    (void)state;
    char *stops[] = {"\n\n", "END"};
    static const char prompt[] = "a\0b \xc3\xa9";
    struct job job = {
        .prompt = (char *)prompt,
        .prompt_len = sizeof(prompt) - 1,
        .max_tokens = {true, 50},
        .temperature = {true, 0.25},
        .top_p = {true, 0.9},
        .top_k = {true, 40},
        .min_p = {true, 0.05},
        .repeat_penalty = {true, 1.1},
        .seed = {true, 4242},
        .stop = stops,
        .n_stop = 2,
        .grammar = "root ::= \"yes\" | \"no\"",
    };
    json_t *req = request_of(&job, &caps);
    const json_t *p = json_object_get(req, "prompt");
    assert_int_equal(json_string_length(p), sizeof(prompt) - 1);
    assert_memory_equal(json_string_value(p), prompt, sizeof(prompt) - 1);
    assert_int_equal(int_at(req, "n_predict"), 50);
    assert_null(json_object_get(req, "max_tokens"));
    assert_true(json_is_true(json_object_get(req, "stream")));
    assert_true(json_is_true(json_object_get(req, "cache_prompt")));
    assert_true(json_real_value(json_object_get(req, "temperature")) == 0.25);
    assert_true(json_real_value(json_object_get(req, "top_p")) == 0.9);
    assert_int_equal(int_at(req, "top_k"), 40);
    assert_true(json_real_value(json_object_get(req, "min_p")) == 0.05);
    assert_true(json_real_value(json_object_get(req, "repeat_penalty")) == 1.1);
    assert_int_equal(int_at(req, "seed"), 4242);
    const json_t *stop = json_object_get(req, "stop");
    assert_int_equal(json_array_size(stop), 2);
    assert_string_equal(json_string_value(json_array_get(stop, 0)), "\n\n");
    assert_string_equal(json_string_value(json_array_get(stop, 1)), "END");
    assert_string_equal(json_string_value(json_object_get(req, "grammar")),
                        "root ::= \"yes\" | \"no\"");
    assert_null(json_object_get(req, "json_schema"));
    assert_null(json_object_get(req, "messages"));
    assert_null(json_object_get(req, "stream_options"));
    json_decref(req);
}

static int64_t predicted_for(struct job_opt_int max_tokens, struct llama_caps c)
{
    struct job job = {.prompt = "x", .prompt_len = 1, .max_tokens = max_tokens};
    json_t *req = request_of(&job, &c);
    int64_t n = int_at(req, "n_predict");
    json_decref(req);
    return n;
}

static void test_max_tokens_caps(void **state)
{
    (void)state;
    assert_int_equal(predicted_for((struct job_opt_int){false, 0}, caps), 16);
    assert_int_equal(predicted_for((struct job_opt_int){true, 7}, caps), 7);
    assert_int_equal(predicted_for((struct job_opt_int){true, 100}, caps), 100);
    assert_int_equal(predicted_for((struct job_opt_int){true, 101}, caps), 100);
    assert_int_equal(predicted_for((struct job_opt_int){true, INT64_MAX}, caps), 100);
    assert_int_equal(predicted_for((struct job_opt_int){true, 0}, caps), 0);
    /* -1 means "no limit" to llama-server: never sent */
    assert_int_equal(predicted_for((struct job_opt_int){true, -1}, caps), 100);
    /* a default above the cap is capped too */
    struct llama_caps odd = {.max_tokens = 10, .default_max_tokens = 50};
    assert_int_equal(predicted_for((struct job_opt_int){false, 0}, odd), 10);
}

static void test_chat_request(void **state)
{
    (void)state;
    struct job_message msgs[] = {
        {.role = "system", .content = "Be brief."},
        {.role = "user", .content = "Say \"hi\"\n"},
    };
    struct job job = {
        .messages = msgs,
        .n_messages = 2,
        .max_tokens = {true, 500},
        .seed = {true, 1},
        .json_schema_json = "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"integer\"}}}",
    };
    json_t *req = request_of(&job, &caps);
    const json_t *m = json_object_get(req, "messages");
    assert_int_equal(json_array_size(m), 2);
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 0), "role")), "system");
    assert_string_equal(json_string_value(json_object_get(json_array_get(m, 1), "content")),
                        "Say \"hi\"\n");
    assert_int_equal(json_object_size(json_array_get(m, 1)), 2);
    assert_int_equal(int_at(req, "max_tokens"), 100);
    assert_null(json_object_get(req, "n_predict"));
    assert_null(json_object_get(req, "prompt"));
    assert_null(json_object_get(req, "response_fields"));
    assert_true(json_is_true(json_object_get(req, "stream")));
    assert_true(
        json_is_true(json_object_get(json_object_get(req, "stream_options"), "include_usage")));
    assert_int_equal(int_at(req, "seed"), 1);
    assert_null(json_object_get(req, "temperature"));
    assert_null(json_object_get(req, "stop"));
    const json_t *schema = json_object_get(req, "json_schema");
    assert_true(json_is_object(schema));
    assert_string_equal(json_string_value(json_object_get(schema, "type")), "object");
    assert_null(json_object_get(req, "grammar"));
    json_decref(req);
}

static void test_schema_wins_over_grammar(void **state)
{
    (void)state;
    /* this llama-server's chat endpoint answers 500 "Cannot use both json_schema and grammar" */
    struct job job = {
        .prompt = "x",
        .prompt_len = 1,
        .grammar = "root ::= \"a\"",
        .json_schema_json = "{}",
    };
    json_t *req = request_of(&job, &caps);
    assert_true(json_is_object(json_object_get(req, "json_schema")));
    assert_null(json_object_get(req, "grammar"));
    json_decref(req);
}

static void test_request_unbuildable(void **state)
{
    (void)state;
    struct job bad_schema = {.prompt = "x", .prompt_len = 1, .json_schema_json = "{nope"};
    assert_null(llama_request_json(&bad_schema, &caps));
    struct job bad_utf8 = {.prompt = "\xff", .prompt_len = 1};
    assert_null(llama_request_json(&bad_utf8, &caps));
}

static void test_lora_lists_every_adapter(void **state)
{
    (void)state;
    static const char *const names[] = {"tiny", "style"};
    struct llama_caps c = caps;
    c.lora_names = names;
    c.n_lora_names = 2;
    struct job_lora style = {.name = "style", .scale = 0.5};
    struct job with = {.prompt = "x", .prompt_len = 1, .lora = &style, .n_lora = 1};
    struct job without = {.prompt = "x", .prompt_len = 1};
    /* without lora, every adapter at 0: this llama-server would apply them at 1.0 */
    static const char *const want[] = {"[{\"id\":0,\"scale\":0.0},{\"id\":1,\"scale\":0.5}]",
                                       "[{\"id\":0,\"scale\":0.0},{\"id\":1,\"scale\":0.0}]"};
    const struct job *jobs[] = {&with, &without};
    for (size_t i = 0; i < 2; i++) {
        json_t *req = request_of(jobs[i], &c);
        json_t *expect = json_loads(want[i], 0, NULL);
        assert_true(json_equal(json_object_get(req, "lora"), expect));
        json_decref(expect);
        json_decref(req);
    }
    json_t *req = request_of(&without, &caps); /* no adapters: no lora */
    assert_null(json_object_get(req, "lora"));
    json_decref(req);
}

/* ---- events ---- */

static void test_completion_stream(void **state)
{
    (void)state;
    static const char *const texts[] = {"\xc3\xa5ng", "animation", " Gy", ""};
    for (size_t i = 0; i < 4; i++) {
        struct llama_event ev = parse_ok(LLAMA_COMPLETION, completion_stream[i]);
        assert_non_null(ev.text);
        assert_string_equal(ev.text, texts[i]);
        assert_int_equal(ev.text_len, strlen(texts[i]));
        assert_int_equal(ev.prompt_tokens, 2);
        assert_int_equal(ev.completion_tokens, i < 3 ? (int64_t)i + 1 : 3);
        assert_int_equal(ev.final, i == 3);
        assert_string_equal(ev.finish, i == 3 ? "length" : "");
        llama_event_clear(&ev);
        assert_null(ev.text);
    }
}

static void test_completion_stop_types(void **state)
{
    (void)state;
    struct llama_event ev = parse_ok(LLAMA_COMPLETION, word_last_partial);
    assert_false(ev.final);
    assert_string_equal(ev.text, " Rob");
    llama_event_clear(&ev);

    ev = parse_ok(LLAMA_COMPLETION, word_final);
    assert_true(ev.final);
    assert_string_equal(ev.finish, "stop");
    assert_int_equal(ev.completion_tokens, 4);
    llama_event_clear(&ev);

    ev = parse_ok(LLAMA_COMPLETION, trimmed_final);
    assert_true(ev.final);
    assert_string_equal(ev.finish, "length");
    assert_int_equal(ev.prompt_tokens, 2);
    assert_int_equal(ev.completion_tokens, 2);
    llama_event_clear(&ev);

    ev = parse_ok(LLAMA_COMPLETION, "{\"content\":\"\",\"stop\":true,\"stop_type\":\"eos\"}");
    assert_string_equal(ev.finish, "stop");
    assert_int_equal(ev.prompt_tokens, -1);
    assert_int_equal(ev.completion_tokens, -1);
    llama_event_clear(&ev);

    ev = parse_ok(LLAMA_COMPLETION, "{\"content\":\"\",\"stop\":true,\"stop_type\":\"none\"}");
    assert_string_equal(ev.finish, "length");
    llama_event_clear(&ev);

    expect_bad_event(LLAMA_COMPLETION, "{\"content\":\"\",\"stop\":true,\"stop_type\":\"odd\"}",
                     "stop_type");
    expect_bad_event(LLAMA_COMPLETION, "{\"content\":\"\",\"stop\":true}", "stop_type");
}

static void test_chat_stream(void **state)
{
    (void)state;
    /* the opening role delta has "content": null: no text */
    struct llama_event ev = parse_ok(LLAMA_CHAT, chat_stream[0]);
    assert_null(ev.text);
    assert_false(ev.final);
    llama_event_clear(&ev);

    ev = parse_ok(LLAMA_CHAT, chat_stream[1]);
    assert_string_equal(ev.text, " cloth");
    assert_int_equal(ev.prompt_tokens, -1);
    llama_event_clear(&ev);

    ev = parse_ok(LLAMA_CHAT, chat_stream[2]);
    assert_string_equal(ev.text, "param");
    llama_event_clear(&ev);

    ev = parse_ok(LLAMA_CHAT, chat_stream[3]);
    assert_null(ev.text);
    assert_true(ev.final);
    assert_string_equal(ev.finish, "length");
    llama_event_clear(&ev);

    ev = parse_ok(LLAMA_CHAT, chat_stream[4]);
    assert_false(ev.final);
    assert_null(ev.text);
    assert_int_equal(ev.prompt_tokens, 29);
    assert_int_equal(ev.completion_tokens, 2);
    llama_event_clear(&ev);

    struct llama_event done;
    char msg[64];
    assert_string_equal(chat_stream[5], "[DONE]");
    assert_int_equal(llama_parse_event(LLAMA_CHAT, "[DONE]", 6, &done, msg, sizeof(msg)), 1);
    assert_null(done.text);
    /* [DONE] is not a /completion event */
    expect_bad_event(LLAMA_COMPLETION, "[DONE]", "not JSON");

    ev = parse_ok(LLAMA_CHAT, "{\"choices\":[{\"finish_reason\":\"stop\",\"delta\":{}}]}");
    assert_string_equal(ev.finish, "stop");
    llama_event_clear(&ev);
    ev = parse_ok(LLAMA_CHAT, "{\"choices\":[{\"finish_reason\":\"tool_calls\"}],\"usage\":null}");
    assert_string_equal(ev.finish, "tool_calls");
    llama_event_clear(&ev);
}

static void test_text_with_nul(void **state)
{
    (void)state;
    struct llama_event ev =
        parse_ok(LLAMA_COMPLETION, "{\"content\":\"a\\u0000b\",\"stop\":false}");
    assert_int_equal(ev.text_len, 3);
    assert_memory_equal(ev.text, "a\0b", 4);
    llama_event_clear(&ev);
}

static void test_error_event(void **state)
{
    (void)state;
    expect_bad_event(LLAMA_COMPLETION, error_event,
                     "this custom template is not supported (server_error)");
    expect_bad_event(LLAMA_CHAT, error_event, "this custom template is not supported");
    expect_bad_event(LLAMA_CHAT, "{\"error\":\"boom\"}", "boom");
}

static void test_malformed_events(void **state)
{
    (void)state;
    expect_bad_event(LLAMA_COMPLETION, "", "not JSON");
    expect_bad_event(LLAMA_COMPLETION, "{\"content\":\"a\"", "not JSON");
    expect_bad_event(LLAMA_COMPLETION, "{\"stop\":false} x", "not JSON");
    expect_bad_event(LLAMA_COMPLETION, "[1]", "not a JSON object");
    expect_bad_event(LLAMA_COMPLETION, "{\"content\":\"a\"}", "stop");
    expect_bad_event(LLAMA_COMPLETION, "{\"content\":1,\"stop\":false}", "content");
    expect_bad_event(LLAMA_COMPLETION, "{\"stop\":false,\"tokens_predicted\":-1}", "token count");
    expect_bad_event(LLAMA_COMPLETION, "{\"stop\":false,\"tokens_evaluated\":1.5}", "token count");
    expect_bad_event(LLAMA_CHAT, "{\"object\":\"chat.completion.chunk\"}", "choices");
    expect_bad_event(LLAMA_CHAT, "{\"choices\":[1]}", "choice");
    expect_bad_event(LLAMA_CHAT, "{\"choices\":[{\"delta\":[]}]}", "delta");
    expect_bad_event(LLAMA_CHAT, "{\"choices\":[{\"delta\":{\"content\":5}}]}", "content");
    expect_bad_event(LLAMA_CHAT, "{\"choices\":[{\"finish_reason\":3}]}", "finish_reason");
    expect_bad_event(LLAMA_CHAT, "{\"choices\":[{\"finish_reason\":\"a_very_long_reason\"}]}",
                     "finish_reason");
    expect_bad_event(LLAMA_CHAT, "{\"choices\":[],\"usage\":{\"prompt_tokens\":\"3\"}}", "usage");

    /* a NULL or zero-length message buffer is fine */
    struct llama_event ev;
    assert_int_equal(llama_parse_event(LLAMA_CHAT, "x", 1, &ev, NULL, 0), -1);
}

/* ---- the in-place reader (llama_fast.c) ---- */

static enum llama_fast_result fast(enum llama_endpoint ep, const char *data)
{
    struct llama_event ev = {0};
    llama_event_clear(&ev);
    enum llama_fast_result r = llama_fast_event(ep, data, strlen(data), &ev);
    if (r == LLAMA_FAST_TAKEN) {
        /* what it takes, the full parser decodes the same way */
        struct llama_event tree;
        char msg[128] = "";
        assert_int_equal(llama_parse_event_tree(ep, data, strlen(data), &tree, msg, sizeof(msg)),
                         0);
        assert_int_equal(!ev.text, !tree.text);
        if (ev.text) {
            assert_int_equal(ev.text_len, tree.text_len);
            assert_memory_equal(ev.text, tree.text, ev.text_len);
        }
        assert_int_equal(ev.final, tree.final);
        assert_string_equal(ev.finish, tree.finish);
        assert_int_equal(ev.prompt_tokens, tree.prompt_tokens);
        assert_int_equal(ev.completion_tokens, tree.completion_tokens);
        llama_event_clear(&tree);
    } else {
        assert_null(ev.text);
    }
    llama_event_clear(&ev);
    return r;
}

static void test_fast_reader_takes_plain_pieces(void **state)
{
    (void)state;
    for (size_t i = 0; i < 3; i++) {
        assert_int_equal(fast(LLAMA_COMPLETION, completion_stream[i]), LLAMA_FAST_TAKEN);
        assert_int_equal(fast(LLAMA_CHAT, chat_stream[i]), LLAMA_FAST_TAKEN);
    }
    assert_int_equal(fast(LLAMA_COMPLETION, " {\"content\" : \"a\" ,\n\"stop\":false} \r\n"),
                     LLAMA_FAST_TAKEN);
    assert_int_equal(fast(LLAMA_COMPLETION, "{\"stop\":false,\"n\":[1.5,-2,{},[],true,null]}"),
                     LLAMA_FAST_TAKEN);
    /* the final event as llama_request_json's response_fields trims it */
    assert_int_equal(fast(LLAMA_COMPLETION, trimmed_final), LLAMA_FAST_TAKEN);
    assert_int_equal(fast(LLAMA_COMPLETION,
                          "{\"content\":\"\",\"stop\":true,\"stop_type\":\"word\","
                          "\"timings\":{\"a\":0.048310344827586206}}"),
                     LLAMA_FAST_TAKEN);
    assert_int_equal(fast(LLAMA_COMPLETION, "{\"stop\":false,\"timings\":{}}"), LLAMA_FAST_TAKEN);
    /* the fast fake's final event (tests/tools/fast_fake_llama.c) */
    assert_int_equal(fast(LLAMA_COMPLETION,
                          "{\"index\":0,\"content\":\"\",\"tokens\":[],\"id_slot\":0,\"stop\":true,"
                          "\"tokens_predicted\":10,\"tokens_evaluated\":4,\"stop_type\":\"eos\","
                          "\"stopping_word\":\"\",\"timings\":{\"cache_n\":0,\"prompt_n\":4,"
                          "\"prompt_ms\":0.1,\"predicted_n\":10,\"predicted_ms\":0.1}}"),
                     LLAMA_FAST_TAKEN);
    /* the untrimmed final events carry escapes: the full parser's */
    assert_int_equal(fast(LLAMA_COMPLETION, word_final), LLAMA_FAST_DECLINED);
    assert_int_equal(fast(LLAMA_COMPLETION, completion_stream[3]), LLAMA_FAST_DECLINED);
    /* the fast fake's piece (tests/tools/fast_fake_llama.c) */
    assert_int_equal(fast(LLAMA_COMPLETION, "{\"index\":0,\"content\":\"tok1\",\"tokens\":[1],"
                                            "\"stop\":false,\"tokens_predicted\":1}"),
                     LLAMA_FAST_TAKEN);
}

static void test_fast_reader_declines_the_rest(void **state)
{
    (void)state;
    static const char *const completion_declined[] = {
        /* for the full parser to decode or refuse */
        "{\"content\":\"a\\nb\",\"stop\":false}",
        "{\"content\":\"a\",\"stop\":true}",
        "{\"stop\":false,\"error\":{}}",
        "{\"stop\":false,\"completion_probabilities\":[]}",
        "{\"stop\":true,\"stop_type\":\"odd\"}",
        "{\"stop\":true,\"stop_type\":1}",
        "{\"stop\":true,\"stop_type\":\"eos\",\"stop_type\":\"eos\"}",
        "{\"stop\":1,\"stop_type\":\"eos\"}",
        "{\"stop\":false,\"x\":1234567890123456789.5}",
        "{\"stop\":false,\"stop\":false}",
        "{\"content\":1,\"stop\":false}",
        "{\"stop\":false,\"tokens_predicted\":-0}",
        "{\"stop\":false,\"tokens_predicted\":1.0}",
        "{\"stop\":false,\"x\":1e5}",
        "{\"stop\":false,\"x\":12345678901234567890}",
        "{\"stop\":false,\"x\":01}",
        "{\"stop\":false,\"x\":\"\x01\"}",
        "{\"stop\":false,\"x\":\"\xc3\"}",
        /* not JSON, though jsmn alone would take some */
        "{\"content\":\"a\",\"stop\":false,}",
        "{\"content\" \"a\",\"stop\":false}",
        "{\"content\":\"a\" \"stop\":false}",
        "{\"stop\":false,\"x\":[1,]}",
        "{\"stop\":false,\"x\":[1 2]}",
        "{\"stop\":false,,\"x\":1}",
        "{\"stop\":false}x",
        "{\"stop\":false}{}",
        "{\"stop\":false,\"x\":tru}",
        "{\"stop\":false,\"x\":-}",
        "{\"stop\":false,\"x\":1.}",
        "{\"stop\":false,\"x\":{\"a\"}}",
        "{\"stop\":false",
    };
    for (size_t i = 0; i < sizeof(completion_declined) / sizeof(completion_declined[0]); i++)
        if (fast(LLAMA_COMPLETION, completion_declined[i]) != LLAMA_FAST_DECLINED)
            fail_msg("taken: %s", completion_declined[i]);
    static const char *const chat_declined[] = {
        "{\"choices\":[],\"usage\":{}}",
        "{\"choices\":[{},{}]}",
        "{\"choices\":[{\"finish_reason\":\"stop\"}]}",
        "{\"choices\":[{\"logprobs\":{\"content\":[]}}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"\\\"\"}}]}",
        "{\"choices\":[{\"delta\":[]}]}",
        "{\"choices\":[{\"delta\":{\"content\":\"a\",\"content\":\"b\"}}]}",
    };
    for (size_t i = 0; i < sizeof(chat_declined) / sizeof(chat_declined[0]); i++)
        if (fast(LLAMA_CHAT, chat_declined[i]) != LLAMA_FAST_DECLINED)
            fail_msg("taken: %s", chat_declined[i]);
    /* declined events still decode through the full parser */
    struct llama_event ev = parse_ok(LLAMA_COMPLETION, "{\"content\":\"a\\nb\",\"stop\":false}");
    assert_string_equal(ev.text, "a\nb");
    llama_event_clear(&ev);
    expect_bad_event(LLAMA_COMPLETION, "{\"content\":\"a\",\"stop\":false,}", "not JSON");
}

/* ---- errors ---- */

static void expect_error(long status, const char *body, enum llmq_code code, const char *msg_has)
{
    char msg[256] = "";
    assert_int_equal(llama_parse_error(status, body, body ? strlen(body) : 0, msg, sizeof(msg)),
                     code);
    if (!strstr(msg, msg_has))
        fail_msg("message \"%s\" lacks \"%s\"", msg, msg_has);
}

static void test_error_bodies(void **state)
{
    (void)state;
    expect_error(400, context_error_body, LLMQ_CONTEXT_EXCEEDED,
                 "llama-server HTTP 400: request (302 tokens) exceeds the available context size "
                 "(256 tokens), try increasing it (exceed_context_size_error)");
    expect_error(400,
                 "{\"error\":{\"code\":400,\"message\":\"Failed to initialize samplers: failed to "
                 "parse grammar\",\"type\":\"invalid_request_error\"}}",
                 LLMQ_BACKEND_ERROR, "failed to parse grammar (invalid_request_error)");
    expect_error(500,
                 "{\"error\":{\"code\":500,\"message\":\"Cannot use both json_schema and "
                 "grammar\",\"type\":\"server_error\"}}",
                 LLMQ_BACKEND_ERROR, "HTTP 500: Cannot use both");
    expect_error(503,
                 "{\"error\":{\"code\":503,\"message\":\"Loading model\",\"type\":"
                 "\"unavailable_error\"}}",
                 LLMQ_BACKEND_ERROR, "Loading model");
    expect_error(401,
                 "{\"error\":{\"code\":401,\"message\":\"Invalid API Key\",\"type\":"
                 "\"authentication_error\"}}",
                 LLMQ_BACKEND_ERROR, "HTTP 401: Invalid API Key");
    expect_error(502, "<html>\r\nBad\tGateway\x01</html>", LLMQ_BACKEND_ERROR,
                 "llama-server HTTP 502: <html>  Bad Gateway </html>");
    expect_error(500, "", LLMQ_BACKEND_ERROR, "llama-server HTTP 500");
    expect_error(500, NULL, LLMQ_BACKEND_ERROR, "llama-server HTTP 500");
    expect_error(404, "{\"error\":{}}", LLMQ_BACKEND_ERROR, "HTTP 404: unspecified error");
}

static void test_error_message_truncation(void **state)
{
    (void)state;
    /* a short buffer cuts before a multi-byte character, never inside it */
    static const char body[] =
        "{\"error\":{\"message\":\"\xc3\xa9\xc3\xa9\xc3\xa9\",\"type\":\"server_error\"}}";
    char msg[28];
    memset(msg, 'z', sizeof(msg));
    llama_parse_error(500, body, strlen(body), msg, sizeof(msg));
    /* "llama-server HTTP 500: " is 23 bytes; 4 are left: two characters fit */
    assert_string_equal(msg, "llama-server HTTP 500: \xc3\xa9\xc3\xa9");
    assert_int_equal(llama_parse_error(500, body, strlen(body), NULL, 0), LLMQ_BACKEND_ERROR);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_endpoint),
        cmocka_unit_test(test_prompt_request_minimal),
        cmocka_unit_test(test_prompt_request_full),
        cmocka_unit_test(test_max_tokens_caps),
        cmocka_unit_test(test_chat_request),
        cmocka_unit_test(test_schema_wins_over_grammar),
        cmocka_unit_test(test_request_unbuildable),
        cmocka_unit_test(test_lora_lists_every_adapter),
        cmocka_unit_test(test_completion_stream),
        cmocka_unit_test(test_completion_stop_types),
        cmocka_unit_test(test_chat_stream),
        cmocka_unit_test(test_text_with_nul),
        cmocka_unit_test(test_error_event),
        cmocka_unit_test(test_malformed_events),
        cmocka_unit_test(test_fast_reader_takes_plain_pieces),
        cmocka_unit_test(test_fast_reader_declines_the_rest),
        cmocka_unit_test(test_error_bodies),
        cmocka_unit_test(test_error_message_truncation),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
