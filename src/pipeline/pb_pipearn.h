/*
 * pb_pipearn.h — the ARNs of SageMaker pipelines and their executions.
 *
 * SageMaker writes resource names in ARNs in lowercase and compares pipeline
 * names without regard to case; pipebridge does the same:
 *   arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME-IN-LOWERCASE
 *   arn:aws:sagemaker:REGION:ACCOUNT:pipeline/NAME-IN-LOWERCASE/execution/ID
 * Pure string functions, no I/O.
 */
#ifndef PB_PIPEARN_H
#define PB_PIPEARN_H

#include "store/pb_store.h"

#include <stdbool.h>
#include <stddef.h>

/* The pipeline's ARN (malloc'd, NULL when out of memory). */
char *pb_pipearn_pipeline(const pb_scope *sc, const char *name);

/* The execution's ARN (malloc'd). */
char *pb_pipearn_execution(const char *pipeline_arn, const char *exec_id);

/* PipelineName members take a name or an ARN. Writes the pipeline name to
 * out (cap bytes): the name as given, or the name part of a pipeline ARN of
 * the caller's account and region. An ARN of another account or region, or
 * one that is not a pipeline ARN, is written whole: no pipeline has such a
 * name, so the lookup fails with "does not exist". Returns false when out is
 * too small. */
bool pb_pipearn_name(const pb_scope *sc, const char *name_or_arn, char *out, size_t cap);

/* A new execution id: 12 characters [a-z0-9], from getrandom. */
void pb_pipearn_exec_id(char out[13]);

#endif
