/*
 * validate.c — member readers that record violations in AWS's Coral
 * format. See validate.h.
 */
#include "validate.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

void pb_v_init(pb_vctx *v)
{
    v->count = 0;
    v->type_error = 0;
    v->type_msg[0] = '\0';
    pb_buf_init(&v->msgs, 64 * 1024);
}

void pb_v_free(pb_vctx *v) { pb_buf_free(&v->msgs); }

size_t pb_utf8_chars(const char *s)
{
    size_t n = 0;
    for (; *s; s++)
        n += ((unsigned char)*s & 0xc0) != 0x80;
    return n;
}

void pb_v_fail(pb_vctx *v, const char *path, const char *shown, const char *constraint)
{
    v->count++;
    if (v->msgs.len)
        pb_buf_puts(&v->msgs, "; ");
    if (shown) {
        /* long values are cut (at a character boundary), as AWS does not echo megabytes back */
        size_t n = strlen(shown), cut = n;
        if (n > 256) {
            cut = 256;
            while (cut > 0 && ((unsigned char)shown[cut] & 0xc0) == 0x80)
                cut--;
        }
        pb_buf_printf(&v->msgs, "Value '%.*s%s' at '%s' failed to satisfy constraint: %s", (int)cut, shown,
                      n > cut ? "..." : "", path, constraint);
    } else {
        pb_buf_printf(&v->msgs, "Value null at '%s' failed to satisfy constraint: %s", path, constraint);
    }
}

static void type_fail(pb_vctx *v, const char *member, const char *want)
{
    if (!v->type_error)
        snprintf(v->type_msg, sizeof v->type_msg, "Unexpected type for member %s: expected %s", member, want);
    v->type_error = 1;
}

/* ---------------------------------------------- SageMaker patterns -- */

static bool is_alnum(unsigned char c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
}
static bool is_digit(unsigned char c) { return c >= '0' && c <= '9'; }

/* ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,maxgroups}$ over s[0..n) */
static bool sm_name(const char *s, size_t n, size_t maxgroups)
{
    if (n == 0 || !is_alnum((unsigned char)s[0]))
        return false;
    size_t groups = 0, i = 1;
    while (i < n) {
        while (i < n && s[i] == '-')
            i++;
        if (i >= n || !is_alnum((unsigned char)s[i]))
            return false;
        i++;
        groups++;
    }
    return groups <= maxgroups;
}

/* Java's `.`: anything but line terminators (\n \r U+0085 U+2028 U+2029). */
static bool sm_dots(const char *s)
{
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        if (*p == '\n' || *p == '\r')
            return false;
        if (p[0] == 0xc2 && p[1] == 0x85)
            return false;
        if (p[0] == 0xe2 && p[1] == 0x80 && (p[2] == 0xa8 || p[2] == 0xa9))
            return false;
    }
    return true;
}

/* arn:aws[a-z\-]*:SERVICE:[a-z0-9\-]*:([0-9]{12}|aws): -- returns what follows, or NULL. */
static const char *sm_arn_prefix(const char *s, const char *service, bool aws_account)
{
    if (strncmp(s, "arn:aws", 7) != 0)
        return NULL;
    const char *p = s + 7;
    while ((*p >= 'a' && *p <= 'z') || *p == '-')
        p++;
    size_t sl = strlen(service);
    if (*p++ != ':' || strncmp(p, service, sl) != 0 || p[sl] != ':')
        return NULL;
    p += sl + 1;
    while ((*p >= 'a' && *p <= 'z') || is_digit((unsigned char)*p) || *p == '-')
        p++;
    if (*p++ != ':')
        return NULL;
    if (aws_account && !strncmp(p, "aws:", 4))
        return p + 4;
    for (int i = 0; i < 12; i++)
        if (!is_digit((unsigned char)*p++))
            return NULL;
    return *p == ':' ? p + 1 : NULL;
}

static bool sm_match(const char *s, pb_charset cs)
{
    size_t n = strlen(s);
    const char *rest;
    switch (cs) {
    case PB_CS_SM_NAME: return sm_name(s, n, 255);
    case PB_CS_SM_EXEC_NAME: return sm_name(s, n, 81);
    case PB_CS_SM_NAME_OR_ARN:
        /* (ARN-PREFIX pipeline/.*)?NAME: an ARN must end in a name character */
        if (sm_name(s, n, 255))
            return true;
        rest = sm_arn_prefix(s, "sagemaker", true);
        return rest && !strncmp(rest, "pipeline/", 9) && rest[9] && sm_dots(rest) &&
               is_alnum((unsigned char)s[n - 1]);
    case PB_CS_SM_EXEC_ARN:
        rest = sm_arn_prefix(s, "sagemaker", false);
        return rest && !strncmp(rest, "pipeline/", 9) && strstr(rest + 9, "/execution/") && sm_dots(rest);
    case PB_CS_SM_RESOURCE_ARN:
        rest = sm_arn_prefix(s, "sagemaker", false);
        return rest && *rest && sm_dots(rest);
    case PB_CS_SM_ROLE_ARN:
        if (strncmp(s, "arn:aws", 7) != 0)
            return false;
        rest = s + 7;
        while ((*rest >= 'a' && *rest <= 'z') || *rest == '-')
            rest++;
        if (strncmp(rest, ":iam::", 6) != 0)
            return false;
        rest += 6;
        for (int i = 0; i < 12; i++)
            if (!is_digit((unsigned char)*rest++))
                return false;
        if (strncmp(rest, ":role", 5) != 0 || !rest[5])
            return false;
        for (const char *p = rest + 5; *p; p++)
            if (!is_alnum((unsigned char)*p) && !strchr("_+=,.@-/", *p))
                return false;
        return true;
    case PB_CS_SM_PARAM_NAME:
        for (const char *p = s; *p; p++)
            if (!is_alnum((unsigned char)*p) && *p != '-' && *p != '_')
                return false;
        return true;
    case PB_CS_SM_TAG:
        for (const unsigned char *p = (const unsigned char *)s; *p; p++)
            if (*p < 0x80 && !is_alnum(*p) && !strchr(" _.:/=+-@", *p))
                return false;
        return true;
    default: return true;
    }
}

static bool in_charset(const char *s, pb_charset cs)
{
    if (cs >= PB_CS_SM_NAME)
        return sm_match(s, cs);
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        unsigned char c = *p;
        bool alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
        switch (cs) {
        case PB_CS_NAME:
            if (!alnum && c != '.' && c != '-' && c != '_')
                return false;
            break;
        case PB_CS_BUSNAME:
            if (!alnum && c != '.' && c != '-' && c != '_' && c != '/')
                return false;
            break;
        case PB_CS_PATHKEY:
            if (!alnum && c != '-' && c != '_')
                return false;
            break;
        default: return true;
        }
    }
    return true;
}

static const char *charset_text(pb_charset cs)
{
    switch (cs) {
    case PB_CS_NAME: return "Member must satisfy regular expression pattern: [\\.\\-_A-Za-z0-9]+";
    case PB_CS_BUSNAME: return "Member must satisfy regular expression pattern: [/\\.\\-_A-Za-z0-9]+";
    case PB_CS_PATHKEY: return "Member must satisfy regular expression pattern: [A-Za-z0-9\\_\\-]+";
    case PB_CS_SM_NAME: return "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}";
    case PB_CS_SM_NAME_OR_ARN:
        return "Member must satisfy regular expression pattern: "
               "(arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:([0-9]{12}|aws):pipeline/.*)?"
               "([a-zA-Z0-9](-*[a-zA-Z0-9]){0,255})";
    case PB_CS_SM_EXEC_NAME: return "Member must satisfy regular expression pattern: ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}";
    case PB_CS_SM_EXEC_ARN:
        return "Member must satisfy regular expression pattern: "
               "^arn:aws[a-z\\-]*:sagemaker:[a-z0-9\\-]*:[0-9]{12}:pipeline\\/.*\\/execution\\/.*$";
    case PB_CS_SM_PARAM_NAME: return "Member must satisfy regular expression pattern: ^[A-Za-z0-9\\-_]*$";
    case PB_CS_SM_ROLE_ARN:
        return "Member must satisfy regular expression pattern: "
               "^arn:aws[a-z\\-]*:iam::\\d{12}:role/?[a-zA-Z_0-9+=,.@\\-_/]+$";
    case PB_CS_SM_RESOURCE_ARN:
        return "Member must satisfy regular expression pattern: arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:.+";
    case PB_CS_SM_TAG: return "Member must satisfy regular expression pattern: ^([\\p{L}\\p{Z}\\p{N}_.:/=+\\-@]*)$";
    default: return "";
    }
}

const char *pb_v_str(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required, size_t min,
                     size_t max, pb_charset cs)
{
    json_t *j = obj ? json_object_get(obj, member) : NULL;
    if (!j || json_is_null(j)) {
        if (required)
            pb_v_fail(v, path, NULL, "Member must not be null");
        return NULL;
    }
    if (!json_is_string(j)) {
        type_fail(v, member, "a string");
        return NULL;
    }
    const char *s = json_string_value(j);
    size_t n = pb_utf8_chars(s);
    char c[96];
    if (n < min) {
        snprintf(c, sizeof c, "Member must have length greater than or equal to %zu", min);
        pb_v_fail(v, path, s, c);
    } else if (max && n > max) {
        snprintf(c, sizeof c, "Member must have length less than or equal to %zu", max);
        pb_v_fail(v, path, s, c);
    } else if (cs != PB_CS_ANY && n > 0 && !in_charset(s, cs)) {
        pb_v_fail(v, path, s, charset_text(cs));
    }
    return s;
}

long long pb_v_int(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required, long long min,
                   long long max, bool *present)
{
    json_t *j = obj ? json_object_get(obj, member) : NULL;
    if (present)
        *present = false;
    if (!j || json_is_null(j)) {
        if (required)
            pb_v_fail(v, path, NULL, "Member must not be null");
        return 0;
    }
    if (!json_is_integer(j)) {
        type_fail(v, member, "an integer");
        return 0;
    }
    long long x = json_integer_value(j);
    char shown[32], c[96];
    snprintf(shown, sizeof shown, "%lld", x);
    if (x < min) {
        snprintf(c, sizeof c, "Member must have value greater than or equal to %lld", min);
        pb_v_fail(v, path, shown, c);
    } else if (x > max) {
        snprintf(c, sizeof c, "Member must have value less than or equal to %lld", max);
        pb_v_fail(v, path, shown, c);
    }
    if (present)
        *present = true;
    return x;
}

bool pb_v_time(pb_vctx *v, json_t *obj, const char *member, const char *path, int64_t *ms)
{
    json_t *j = obj ? json_object_get(obj, member) : NULL;
    (void)path;
    if (!j || json_is_null(j))
        return false;
    if (!json_is_number(j)) {
        type_fail(v, member, "a timestamp (seconds since the epoch)");
        return false;
    }
    double x = json_number_value(j);
    /* beyond +-10^12 s (31,000 years) nothing differs; clamping keeps the conversion defined */
    if (!(x > -1e12))
        x = -1e12;
    if (!(x < 1e12))
        x = 1e12;
    *ms = (int64_t)llround(x * 1000.0);
    return true;
}

bool pb_v_bool(pb_vctx *v, json_t *obj, const char *member, const char *path)
{
    json_t *j = obj ? json_object_get(obj, member) : NULL;
    if (!j || json_is_null(j))
        return false;
    if (!json_is_boolean(j)) {
        type_fail(v, member, "a boolean");
        return false;
    }
    (void)path;
    return json_is_true(j);
}

json_t *pb_v_array(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required, size_t min,
                   size_t max)
{
    json_t *j = obj ? json_object_get(obj, member) : NULL;
    if (!j || json_is_null(j)) {
        if (required)
            pb_v_fail(v, path, NULL, "Member must not be null");
        return NULL;
    }
    if (!json_is_array(j)) {
        type_fail(v, member, "a list");
        return NULL;
    }
    size_t n = json_array_size(j);
    char c[96], shown[32];
    snprintf(shown, sizeof shown, "[%zu items]", n);
    if (n < min) {
        snprintf(c, sizeof c, "Member must have length greater than or equal to %zu", min);
        pb_v_fail(v, path, shown, c);
    } else if (max && n > max) {
        snprintf(c, sizeof c, "Member must have length less than or equal to %zu", max);
        pb_v_fail(v, path, shown, c);
    }
    return j;
}

json_t *pb_v_object(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required)
{
    json_t *j = obj ? json_object_get(obj, member) : NULL;
    if (!j || json_is_null(j)) {
        if (required)
            pb_v_fail(v, path, NULL, "Member must not be null");
        return NULL;
    }
    if (!json_is_object(j)) {
        type_fail(v, member, "a structure");
        return NULL;
    }
    return j;
}

const char *pb_v_enum(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required,
                      const char *const *values)
{
    const char *s = pb_v_str(v, obj, member, path, required, 0, 0, PB_CS_ANY);
    if (!s)
        return NULL;
    for (size_t i = 0; values[i]; i++)
        if (!strcmp(s, values[i]))
            return s;
    pb_buf set;
    pb_buf_init(&set, 4096);
    pb_buf_puts(&set, "Member must satisfy enum value set: [");
    for (size_t i = 0; values[i]; i++)
        pb_buf_printf(&set, "%s%s", i ? ", " : "", values[i]);
    pb_buf_putc(&set, ']');
    pb_v_fail(v, path, s, set.data ? set.data : "");
    pb_buf_free(&set);
    return NULL;
}

int pb_v_finish(pb_vctx *v, pb_error *err)
{
    if (v->type_error)
        return pb_error_set(err, PB_ESERIALIZATION, "%s", v->type_msg);
    if (!v->count)
        return 0;
    return pb_error_set(err, PB_EVALIDATION, "%d validation error%s detected: %s", v->count, v->count > 1 ? "s" : "",
                        v->msgs.data ? v->msgs.data : "");
}
