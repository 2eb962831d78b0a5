/* Minimal JSON reader/writer for the guest agent. Only what the protocol needs. */
#define _GNU_SOURCE
#include "json.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 32

typedef struct {
  const char *p, *end;
  int depth;
} parser_t;

static void *xrealloc(void *p, size_t n) {
  void *r = realloc(p, n ? n : 1);
  if (!r) {
    fprintf(stderr, "paddock-agent: out of memory\n");
    abort();
  }
  return r;
}

static void skip_ws(parser_t *ps) {
  while (ps->p < ps->end && (*ps->p == ' ' || *ps->p == '\t' || *ps->p == '\n' || *ps->p == '\r')) ps->p++;
}

static bool parse_value(parser_t *ps, jval_t *out);

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static bool read_hex4(parser_t *ps, unsigned *out) {
  if (ps->end - ps->p < 4) return false;
  unsigned v = 0;
  for (int i = 0; i < 4; i++) {
    int h = hexval(ps->p[i]);
    if (h < 0) return false;
    v = (v << 4) | (unsigned)h;
  }
  ps->p += 4;
  *out = v;
  return true;
}

static void put_utf8(buf_t *b, unsigned cp) {
  uint8_t tmp[4];
  size_t n;
  if (cp < 0x80) { tmp[0] = (uint8_t)cp; n = 1; }
  else if (cp < 0x800) { tmp[0] = (uint8_t)(0xC0 | (cp >> 6)); tmp[1] = (uint8_t)(0x80 | (cp & 0x3F)); n = 2; }
  else if (cp < 0x10000) {
    tmp[0] = (uint8_t)(0xE0 | (cp >> 12)); tmp[1] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F));
    tmp[2] = (uint8_t)(0x80 | (cp & 0x3F)); n = 3;
  } else {
    tmp[0] = (uint8_t)(0xF0 | (cp >> 18)); tmp[1] = (uint8_t)(0x80 | ((cp >> 12) & 0x3F));
    tmp[2] = (uint8_t)(0x80 | ((cp >> 6) & 0x3F)); tmp[3] = (uint8_t)(0x80 | (cp & 0x3F)); n = 4;
  }
  buf_append(b, tmp, n);
}

static bool parse_string(parser_t *ps, char **out, size_t *outlen) {
  if (ps->p >= ps->end || *ps->p != '"') return false;
  ps->p++;
  buf_t b = {0};
  while (ps->p < ps->end) {
    char c = *ps->p++;
    if (c == '"') {
      buf_append(&b, "", 1);
      *outlen = b.len - 1;
      *out = (char *)b.data;
      return true;
    }
    if ((unsigned char)c < 0x20) break;
    if (c != '\\') { buf_append(&b, &c, 1); continue; }
    if (ps->p >= ps->end) break;
    char e = *ps->p++;
    char lit;
    switch (e) {
      case '"': lit = '"'; break;
      case '\\': lit = '\\'; break;
      case '/': lit = '/'; break;
      case 'b': lit = '\b'; break;
      case 'f': lit = '\f'; break;
      case 'n': lit = '\n'; break;
      case 'r': lit = '\r'; break;
      case 't': lit = '\t'; break;
      case 'u': {
        unsigned cp;
        if (!read_hex4(ps, &cp)) goto fail;
        if (cp >= 0xD800 && cp < 0xDC00 && ps->end - ps->p >= 6 && ps->p[0] == '\\' && ps->p[1] == 'u') {
          const char *save = ps->p;
          ps->p += 2;
          unsigned lo;
          if (read_hex4(ps, &lo) && lo >= 0xDC00 && lo < 0xE000) cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          else ps->p = save;
        }
        put_utf8(&b, cp);
        continue;
      }
      default: goto fail;
    }
    buf_append(&b, &lit, 1);
  }
fail:
  buf_free(&b);
  return false;
}

static bool parse_number(parser_t *ps, jval_t *out) {
  char tmp[64];
  size_t n = 0;
  while (ps->p < ps->end && n < sizeof tmp - 1 && strchr("+-0123456789.eE", *ps->p)) tmp[n++] = *ps->p++;
  if (n == 0) return false;
  tmp[n] = 0;
  char *endp;
  out->t = J_NUM;
  out->n = strtod(tmp, &endp);
  return *endp == 0;
}

static bool match_lit(parser_t *ps, const char *lit) {
  size_t n = strlen(lit);
  if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, lit, n) != 0) return false;
  ps->p += n;
  return true;
}

static bool parse_container(parser_t *ps, jval_t *out, bool is_obj) {
  if (++ps->depth > MAX_DEPTH) return false;
  ps->p++;
  out->t = is_obj ? J_OBJ : J_ARR;
  size_t cap = 0;
  skip_ws(ps);
  if (ps->p < ps->end && *ps->p == (is_obj ? '}' : ']')) { ps->p++; ps->depth--; return true; }
  for (;;) {
    skip_ws(ps);
    char *key = NULL;
    size_t klen;
    if (is_obj) {
      if (!parse_string(ps, &key, &klen)) return false;
      skip_ws(ps);
      if (ps->p >= ps->end || *ps->p != ':') { free(key); return false; }
      ps->p++;
      skip_ws(ps);
    }
    if (out->count == cap) {
      cap = cap ? cap * 2 : 4;
      out->items = xrealloc(out->items, cap * sizeof(jval_t));
      if (is_obj) out->keys = xrealloc(out->keys, cap * sizeof(char *));
    }
    jval_t *item = &out->items[out->count];
    memset(item, 0, sizeof *item);
    if (is_obj) out->keys[out->count] = key;
    out->count++;
    if (!parse_value(ps, item)) return false;
    skip_ws(ps);
    if (ps->p >= ps->end) return false;
    if (*ps->p == ',') { ps->p++; continue; }
    if (*ps->p == (is_obj ? '}' : ']')) { ps->p++; ps->depth--; return true; }
    return false;
  }
}

static bool parse_value(parser_t *ps, jval_t *out) {
  skip_ws(ps);
  if (ps->p >= ps->end) return false;
  switch (*ps->p) {
    case '{': return parse_container(ps, out, true);
    case '[': return parse_container(ps, out, false);
    case '"': out->t = J_STR; return parse_string(ps, &out->s, &out->slen);
    case 't': out->t = J_BOOL; out->b = true; return match_lit(ps, "true");
    case 'f': out->t = J_BOOL; out->b = false; return match_lit(ps, "false");
    case 'n': out->t = J_NULL; return match_lit(ps, "null");
    default: return parse_number(ps, out);
  }
}

static void free_inner(jval_t *v) {
  free(v->s);
  for (size_t i = 0; i < v->count; i++) {
    free_inner(&v->items[i]);
    if (v->keys) free(v->keys[i]);
  }
  free(v->items);
  free(v->keys);
}

void json_free(jval_t *v) {
  if (!v) return;
  free_inner(v);
  free(v);
}

jval_t *json_parse(const char *text, size_t len) {
  parser_t ps = {text, text + len, 0};
  jval_t *v = calloc(1, sizeof *v);
  if (!v) return NULL;
  if (!parse_value(&ps, v)) { json_free(v); return NULL; }
  skip_ws(&ps);
  if (ps.p != ps.end) { json_free(v); return NULL; }
  return v;
}

const jval_t *json_get(const jval_t *obj, const char *key) {
  if (!obj || obj->t != J_OBJ) return NULL;
  for (size_t i = 0; i < obj->count; i++)
    if (strcmp(obj->keys[i], key) == 0) return &obj->items[i];
  return NULL;
}

const char *json_get_str(const jval_t *obj, const char *key) {
  const jval_t *v = json_get(obj, key);
  if (!v || v->t != J_STR || strlen(v->s) != v->slen) return NULL;
  return v->s;
}

/* ---- buffers ---- */

void buf_reserve(buf_t *b, size_t extra) {
  if (b->off > 0 && (b->off >= b->cap / 2 || b->len + extra > b->cap)) {
    memmove(b->data, b->data + b->off, b->len - b->off);
    b->len -= b->off;
    b->off = 0;
  }
  if (b->len + extra <= b->cap) return;
  size_t nc = b->cap ? b->cap : 256;
  while (nc < b->len + extra) nc *= 2;
  b->data = xrealloc(b->data, nc);
  b->cap = nc;
}

void buf_append(buf_t *b, const void *p, size_t n) {
  if (n == 0) return;
  buf_reserve(b, n);
  memcpy(b->data + b->len, p, n);
  b->len += n;
}

void buf_append_str(buf_t *b, const char *s) { buf_append(b, s, strlen(s)); }

void buf_printf(buf_t *b, const char *fmt, ...) {
  char tmp[512];
  va_list ap;
  va_start(ap, fmt);
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return;
  if ((size_t)n < sizeof tmp) { buf_append(b, tmp, (size_t)n); return; }
  char *big = malloc((size_t)n + 1);
  if (!big) abort();
  va_start(ap, fmt);
  vsnprintf(big, (size_t)n + 1, fmt, ap);
  va_end(ap);
  buf_append(b, big, (size_t)n);
  free(big);
}

void buf_consume(buf_t *b, size_t n) {
  b->off += n;
  if (b->off >= b->len) b->off = b->len = 0;
}

void buf_clear(buf_t *b) { b->off = b->len = 0; }

void buf_free(buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->off = b->len = b->cap = 0;
}

void json_write_str(buf_t *b, const char *s, size_t n) {
  static const char hex[] = "0123456789abcdef";
  buf_append(b, "\"", 1);
  size_t start = 0;
  for (size_t i = 0; i < n; i++) {
    unsigned char c = (unsigned char)s[i];
    if (c >= 0x20 && c != '"' && c != '\\' && c != 0x7f) continue;
    buf_append(b, s + start, i - start);
    start = i + 1;
    char esc[7] = {'\\', 'u', '0', '0', hex[c >> 4], hex[c & 15], 0};
    switch (c) {
      case '"': buf_append(b, "\\\"", 2); break;
      case '\\': buf_append(b, "\\\\", 2); break;
      case '\n': buf_append(b, "\\n", 2); break;
      case '\r': buf_append(b, "\\r", 2); break;
      case '\t': buf_append(b, "\\t", 2); break;
      default: buf_append(b, esc, 6);
    }
  }
  buf_append(b, s + start, n - start);
  buf_append(b, "\"", 1);
}
