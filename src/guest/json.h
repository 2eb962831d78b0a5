/* Minimal JSON reader/writer for the guest agent (requests are small; see PROTOCOL.md). */
#ifndef PADDOCK_JSON_H
#define PADDOCK_JSON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype_t;

typedef struct jval {
  jtype_t t;
  bool b;
  double n;
  char *s;          /* J_STR: NUL-terminated; slen excludes the NUL */
  size_t slen;
  struct jval *items; /* J_ARR / J_OBJ values */
  char **keys;        /* J_OBJ keys */
  size_t count;
} jval_t;

/* Parses text[0..len). Returns NULL on malformed input. Free with json_free. */
jval_t *json_parse(const char *text, size_t len);
void json_free(jval_t *v);
const jval_t *json_get(const jval_t *obj, const char *key);
/* Returns the string value of key, or NULL if absent/not a string or it holds a NUL byte. */
const char *json_get_str(const jval_t *obj, const char *key);

/* Growable byte buffer: valid bytes are data[off..len). */
typedef struct {
  uint8_t *data;
  size_t off, len, cap;
} buf_t;

void buf_reserve(buf_t *b, size_t extra);
void buf_append(buf_t *b, const void *p, size_t n);
void buf_append_str(buf_t *b, const char *s);
void buf_printf(buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
void buf_consume(buf_t *b, size_t n);
void buf_clear(buf_t *b);
void buf_free(buf_t *b);
static inline size_t buf_avail(const buf_t *b) { return b->len - b->off; }
static inline uint8_t *buf_head(const buf_t *b) { return b->data + b->off; }

/* Appends s[0..n) as a quoted JSON string. */
void json_write_str(buf_t *b, const char *s, size_t n);

#endif
