/* test_cli_json.c — JSON packs to the msgpack it means, and every msgpack
 * value (bin, ext, odd keys, non-finite floats included) gets a JSON form. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#include <cmocka.h>

#include <jansson.h>
#include <math.h>
#include <msgpack.h>
#include <stdlib.h>
#include <string.h>

#include "cli_json.h"

/* JSON text -> msgpack -> JSON text. */
static char *round_trip(const char *text)
{
    json_error_t err;
    json_t *in = json_loads(text, 0, &err);
    assert_non_null(in);
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    assert_int_equal(cli_json_pack(&pk, in), 0);
    json_t *out = cli_json_from_msgpack_bytes(buf.data, buf.size);
    assert_non_null(out);
    char *dumped = json_dumps(out, JSON_COMPACT);
    json_decref(in);
    json_decref(out);
    msgpack_sbuffer_destroy(&buf);
    return dumped;
}

static void test_round_trip(void **state)
{
    (void)state;
    static const char *const texts[] = {
        "{\"v\":1,\"id\":\"a\",\"prompt\":\"h\xc3\xa9\",\"temperature\":0.5,\"max_tokens\":9}",
        "{\"a\":[1,-2,9223372036854775807,-9223372036854775808,1.5,true,false,null],"
        "\"b\":{\"c\":{}}}",
        "[]",
    };
    for (size_t i = 0; i < sizeof(texts) / sizeof(texts[0]); i++) {
        char *out = round_trip(texts[i]);
        assert_string_equal(out, texts[i]);
        free(out);
    }
}

static void test_pack_types(void **state)
{
    (void)state;
    json_t *in = json_pack("{s:i,s:f}", "n", 1, "x", 1.0);
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    assert_int_equal(cli_json_pack(&pk, in), 0);
    msgpack_unpacked u;
    msgpack_unpacked_init(&u);
    assert_int_equal(msgpack_unpack_next(&u, buf.data, buf.size, NULL), MSGPACK_UNPACK_SUCCESS);
    const msgpack_object_map *map = &u.data.via.map;
    assert_int_equal(map->size, 2);
    for (uint32_t i = 0; i < map->size; i++) {
        bool is_n = map->ptr[i].key.via.str.ptr[0] == 'n';
        /* an integer stays an int, a real stays a float64 even when whole */
        assert_int_equal(map->ptr[i].val.type,
                         is_n ? MSGPACK_OBJECT_POSITIVE_INTEGER : MSGPACK_OBJECT_FLOAT64);
    }
    msgpack_unpacked_destroy(&u);
    msgpack_sbuffer_destroy(&buf);
    json_decref(in);
}

static void test_show_what_json_lacks(void **state)
{
    (void)state;
    msgpack_sbuffer buf;
    msgpack_packer pk;
    msgpack_sbuffer_init(&buf);
    msgpack_packer_init(&pk, &buf, msgpack_sbuffer_write);
    msgpack_pack_map(&pk, 6);
    msgpack_pack_str_with_body(&pk, "bin", 3);
    msgpack_pack_bin_with_body(&pk, "\x00\xff\x10\x20", 4);
    msgpack_pack_str_with_body(&pk, "ext", 3);
    msgpack_pack_ext_with_body(&pk, "abc", 3, 5);
    msgpack_pack_str_with_body(&pk, "nan", 3);
    msgpack_pack_double(&pk, NAN);
    msgpack_pack_str_with_body(&pk, "big", 3);
    msgpack_pack_uint64(&pk, UINT64_MAX);
    msgpack_pack_int(&pk, 7); /* an int key */
    msgpack_pack_str_with_body(&pk, "seven", 5);
    msgpack_pack_str_with_body(&pk, "bad", 3);
    msgpack_pack_str_with_body(&pk, "\xff\xfe", 2); /* not UTF-8 */

    json_t *out = cli_json_from_msgpack_bytes(buf.data, buf.size);
    assert_non_null(out);
    assert_string_equal(json_string_value(json_object_get(out, "bin")), "AP8QIA==");
    assert_string_equal(json_string_value(json_object_get(out, "ext")), "YWJj");
    assert_true(json_is_null(json_object_get(out, "nan")));
    assert_true(json_is_real(json_object_get(out, "big")));
    assert_string_equal(json_string_value(json_object_get(out, "7")), "seven");
    assert_string_equal(json_string_value(json_object_get(out, "bad")), "//4=");
    json_decref(out);

    /* not exactly one value: refused */
    assert_null(cli_json_from_msgpack_bytes(buf.data, buf.size - 1));
    msgpack_pack_nil(&pk);
    assert_null(cli_json_from_msgpack_bytes(buf.data, buf.size));
    msgpack_sbuffer_destroy(&buf);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_pack_types),
        cmocka_unit_test(test_show_what_json_lacks),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
