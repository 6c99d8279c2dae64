/*
 * api_common.c — helpers every handler uses: optional JSON members, times,
 * ARNs, bus names given as names or ARNs, paging tokens and tags.
 */
#define _GNU_SOURCE
#include "api_internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

void pb_json_set_str(json_t *obj, const char *key, const char *s)
{
    if (s)
        json_object_set_new(obj, key, json_string(s));
}

json_t *pb_json_time(int64_t ms) { return json_real((double)ms / 1000.0); }

static char *fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
static char *fmt(const char *f, ...)
{
    va_list ap;
    va_start(ap, f);
    char *s = NULL;
    if (vasprintf(&s, f, ap) < 0)
        s = NULL;
    va_end(ap);
    return s;
}

char *pb_arn_bus(const pb_scope *sc, const char *bus)
{
    return fmt("arn:aws:events:%s:%s:event-bus/%s", sc->region, sc->account, bus);
}

char *pb_arn_rule(const pb_scope *sc, const char *bus, const char *rule)
{
    if (!strcmp(bus, "default"))
        return fmt("arn:aws:events:%s:%s:rule/%s", sc->region, sc->account, rule);
    return fmt("arn:aws:events:%s:%s:rule/%s/%s", sc->region, sc->account, bus, rule);
}

void pb_read_bus_name(pb_vctx *v, json_t *in, const char *member, const char *path, const pb_scope *sc, char *out,
                      size_t cap)
{
    const char *s = pb_v_str(v, in, member, path, false, 1, 1600, PB_CS_ANY);
    snprintf(out, cap, "default");
    if (!s)
        return;
    const char *name = s;
    if (!strncmp(s, "arn:", 4)) {
        const char *p = strstr(s, ":event-bus/");
        if (!p || strncmp(s, "arn:aws", 7) != 0 || !strstr(s, ":events:")) {
            pb_v_fail(v, path, s,
                      "Member must satisfy regular expression pattern: "
                      "(arn:aws[\\w-]*:events:[a-z]+-[a-z]+-[\\w-]+:[0-9]{12}:event-bus\\/)?[/\\.\\-_A-Za-z0-9]+");
            return;
        }
        name = p + 11;
        char mine[256];
        snprintf(mine, sizeof mine, ":events:%s:%s:event-bus/", sc->region, sc->account);
        if (!strstr(s, mine)) { /* another account's or region's bus */
            snprintf(out, cap, "%s", s);
            return;
        }
    }
    if (!*name) {
        pb_v_fail(v, path, s, "Member must have length greater than or equal to 1");
        return;
    }
    for (const char *c = name; *c; c++) {
        bool ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9') || *c == '.' ||
                  *c == '-' || *c == '_' || *c == '/';
        if (!ok || !*name) {
            pb_v_fail(v, path, s,
                      "Member must satisfy regular expression pattern: "
                      "(arn:aws[\\w-]*:events:[a-z]+-[a-z]+-[\\w-]+:[0-9]{12}:event-bus\\/)?[/\\.\\-_A-Za-z0-9]+");
            return;
        }
    }
    snprintf(out, cap, "%s", name);
}

/* Tokens are "pb1." + hex of the last key: opaque to clients, checkable here. */
char *pb_token_encode(const char *last_key)
{
    size_t n = strlen(last_key);
    char *t = malloc(4 + 2 * n + 1);
    if (!t)
        return NULL;
    memcpy(t, "pb1.", 4);
    for (size_t i = 0; i < n; i++)
        sprintf(t + 4 + 2 * i, "%02x", (unsigned char)last_key[i]);
    t[4 + 2 * n] = '\0';
    return t;
}

int pb_token_decode(const char *token, char *out, size_t cap, pb_error *err)
{
    size_t n = strlen(token);
    if (n < 4 || memcmp(token, "pb1.", 4) || (n - 4) % 2 || (n - 4) / 2 >= cap)
        goto bad;
    for (size_t i = 0; i < (n - 4) / 2; i++) {
        unsigned v;
        if (sscanf(token + 4 + 2 * i, "%2x", &v) != 1)
            goto bad;
        out[i] = (char)v;
        if (!v)
            goto bad;
    }
    out[(n - 4) / 2] = '\0';
    return 0;
bad:
    return pb_error_set(err, PB_EVALIDATION, "The NextToken provided is invalid.");
}

void pb_read_page(pb_vctx *v, json_t *in, pb_page *pg)
{
    bool has_limit = false;
    pg->token = pb_v_str(v, in, "NextToken", "nextToken", false, 1, 2048, PB_CS_ANY);
    long long limit = pb_v_int(v, in, "Limit", "limit", false, 1, PB_MAX_PAGE, &has_limit);
    pg->limit = has_limit && limit >= 1 ? (size_t)limit : PB_MAX_PAGE;
    pg->after[0] = '\0';
}

int pb_page_decode(pb_page *pg, pb_error *err)
{
    return pg->token ? pb_token_decode(pg->token, pg->after, sizeof pg->after, err) : 0;
}

void pb_set_next_token(json_t *out, bool more, const char *last_key)
{
    if (!more || !last_key)
        return;
    char *t = pb_token_encode(last_key);
    pb_json_set_str(out, "NextToken", t);
    free(t);
}

int pb_read_tags(pb_vctx *v, json_t *in, const char *member, const char *path, pb_tag **tags, size_t *n)
{
    *tags = NULL;
    *n = 0;
    json_t *arr = pb_v_array(v, in, member, path, false, 0, PB_MAX_TAGS);
    if (!arr || json_array_size(arr) > PB_MAX_TAGS)
        return 0;
    size_t cnt = json_array_size(arr);
    pb_tag *t = calloc(cnt ? cnt : 1, sizeof *t);
    if (!t)
        return PB_ENOMEM;
    for (size_t i = 0; i < cnt; i++) {
        json_t *e = json_array_get(arr, i);
        char kp[96], vp[96];
        snprintf(kp, sizeof kp, "%s.%zu.member.key", path, i + 1);
        snprintf(vp, sizeof vp, "%s.%zu.member.value", path, i + 1);
        if (!json_is_object(e)) {
            pb_v_fail(v, kp, NULL, "Member must not be null");
            continue;
        }
        const char *k = pb_v_str(v, e, "Key", kp, true, 1, 128, PB_CS_ANY);
        const char *val = pb_v_str(v, e, "Value", vp, true, 0, 256, PB_CS_ANY);
        t[i].key = k ? strdup(k) : NULL;
        t[i].value = val ? strdup(val) : NULL;
    }
    *tags = t;
    *n = cnt;
    return 0;
}

json_t *pb_tags_json(const pb_tag *tags, size_t n)
{
    json_t *a = json_array();
    for (size_t i = 0; i < n; i++) {
        json_t *o = json_object();
        json_object_set_new(o, "Key", json_string(tags[i].key));
        json_object_set_new(o, "Value", json_string(tags[i].value ? tags[i].value : ""));
        json_array_append_new(a, o);
    }
    return a;
}
