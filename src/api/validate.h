/*
 * validate.h — reading request members and reporting violations as AWS does.
 *
 * Handlers read members through these helpers, which record each constraint
 * violation; pb_v_finish then answers ValidationException with AWS's Coral
 * wording ("1 validation error detected: Value 'x' at 'name' failed to
 * satisfy constraint: Member must ..."; several joined by "; "). A member of
 * the wrong JSON type is a SerializationException, as the AWS frameworks
 * answer it.
 */
#ifndef PB_VALIDATE_H
#define PB_VALIDATE_H

#include "common/pb_buf.h"
#include "common/pb_error.h"

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct pb_vctx {
    int count;        /* violations recorded */
    int type_error;   /* a member had the wrong JSON type */
    pb_buf msgs;      /* "Value ... at ... failed to satisfy constraint: ...; ..." */
    char type_msg[256];
} pb_vctx;

/* Character classes used by the AWS models. */
typedef enum pb_charset {
    PB_CS_ANY = 0,
    PB_CS_NAME,     /* [\.\-_A-Za-z0-9]+          rule names, target ids */
    PB_CS_BUSNAME,  /* [/\.\-_A-Za-z0-9]+         bus names */
    PB_CS_PATHKEY,  /* [A-Za-z0-9\_\-]+           InputPathsMap keys */
    /* SageMaker (whole-string patterns, shown verbatim in the message) */
    PB_CS_SM_NAME,         /* ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}       PipelineName, PipelineDisplayName */
    PB_CS_SM_NAME_OR_ARN,  /* a PipelineName or a pipeline ARN ending in one (PipelineNameOrArn) */
    PB_CS_SM_EXEC_NAME,    /* ^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,81}        PipelineExecutionDisplayName */
    PB_CS_SM_EXEC_ARN,     /* ^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline\/.*\/execution\/.*$ */
    PB_CS_SM_PARAM_NAME,   /* ^[A-Za-z0-9\-_]*$                        PipelineParameters[].Name */
    PB_CS_SM_ROLE_ARN,     /* ^arn:aws[a-z\-]*:iam::\d{12}:role/?[a-zA-Z_0-9+=,.@\-_/]+$ */
    PB_CS_SM_RESOURCE_ARN, /* arn:aws[a-z-]*:sagemaker:[a-z0-9-]*:[0-9]{12}:.+   AddTags &c. */
    PB_CS_SM_TAG,          /* ^([\p{L}\p{Z}\p{N}_.:/=+\-@]*)$  tag keys and values (non-ASCII
                              counts as a letter) */
} pb_charset;

void pb_v_init(pb_vctx *v);
void pb_v_free(pb_vctx *v);

/* Records one violation of member `path` (lowerCamelCase, e.g. "name",
 * "targets.1.member.id") whose value is shown as shown (NULL: null). */
void pb_v_fail(pb_vctx *v, const char *path, const char *shown, const char *constraint);

/* The string member `member` of obj, or NULL when absent. Checks type,
 * presence (required), length in characters [min, max] and charset. */
const char *pb_v_str(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required, size_t min,
                     size_t max, pb_charset cs);

/* An integer member; *present says whether it was there. Checks [min, max]. */
long long pb_v_int(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required, long long min,
                   long long max, bool *present);

/* A timestamp member (a JSON number of seconds since the epoch, integer or
 * fractional, as the JSON protocol sends them): *ms is set and true returned
 * when present. */
bool pb_v_time(pb_vctx *v, json_t *obj, const char *member, const char *path, int64_t *ms);

/* A boolean member (false when absent). */
bool pb_v_bool(pb_vctx *v, json_t *obj, const char *member, const char *path);

/* An array / object member, or NULL when absent (type checked; length in [min, max]). */
json_t *pb_v_array(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required, size_t min,
                   size_t max);
json_t *pb_v_object(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required);

/* A string that must be one of the given values (NULL-terminated list). */
const char *pb_v_enum(pb_vctx *v, json_t *obj, const char *member, const char *path, bool required,
                      const char *const *values);

/* 0 when nothing was recorded; otherwise fills err (ValidationException or
 * SerializationException) and returns its code. */
int pb_v_finish(pb_vctx *v, pb_error *err);

/* Number of Unicode code points in a UTF-8 string (AWS lengths count characters). */
size_t pb_utf8_chars(const char *s);

#endif
