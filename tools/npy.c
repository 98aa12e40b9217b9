/* .npy reader and writer (see npy.h). The reader trusts nothing: magic, version, header length, the
 * header dict's grammar, keys, dtype, order, shape and data length are all checked before any of
 * it is used, in time linear in the header (at most 10000 bytes) and before allocating the data. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "npy.h"

/* More elements than this is not a tensor anyone passes to a CLI: refuse before allocating. */
#define NPY_MAX_ELEMENTS (INT64_C(1) << 36)
/* NumPy's np.load refuses longer headers too (max_header_size) as unsafe to parse; ours are < 256. */
#define NPY_MAX_HEADER 10000

__attribute__((format(printf, 4, 5))) static stile_status fail(char *err, size_t n, stile_status st, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(err, n, fmt, ap);
    va_end(ap);
    return st;
}

void npy_free(npy_array *a)
{
    if (!a) return;
    free(a->data);
    a->data = NULL;
}

/* ---- the header: a Python dict literal, parsed by a small recursive-descent reader ---- */

typedef struct cursor {
    const char *start, *p, *end;
} cursor;

typedef struct value {
    enum { V_STRING, V_BOOL, V_TUPLE } kind;
    const char *s; /* V_STRING: the text between the quotes */
    size_t len;
    int b;         /* V_BOOL */
    int n;         /* V_TUPLE: shape */
    int64_t dims[NPY_MAX_DIMS];
} value;

static void skip_spaces(cursor *c)
{
    while (c->p < c->end && *c->p == ' ') c->p++;
}

static int at(const cursor *c, char ch) { return c->p < c->end && *c->p == ch; }
static long pos(const cursor *c) { return (long)(c->p - c->start); }

/* '...' or "..." without escapes: numpy's keys and dtype strings never need them. */
static stile_status parse_string(cursor *c, value *v, char *err, size_t en)
{
    const char q = *c->p++;
    v->kind = V_STRING;
    v->s = c->p;
    while (c->p < c->end && *c->p != q) {
        const unsigned char ch = (unsigned char)*c->p;
        if (ch == '\\' || ch < 0x20 || ch == 0x7f)
            return fail(err, en, STILE_ERR_FORMAT, "header byte %ld: escapes and control characters are not supported in strings", pos(c));
        c->p++;
    }
    if (c->p == c->end) return fail(err, en, STILE_ERR_FORMAT, "header: a string is not closed");
    v->len = (size_t)(c->p - v->s);
    c->p++;
    return STILE_OK;
}

/* (), (N,), (N, M) or (N, M,): whole numbers >= 0 as Python writes them, at most 8, at most 2^36 in product. */
static stile_status parse_tuple(cursor *c, value *v, char *err, size_t en)
{
    v->kind = V_TUPLE;
    v->n = 0;
    c->p++; /* '(' */
    skip_spaces(c);
    int64_t count = 1;
    int comma = 0;
    while (!at(c, ')')) {
        if (v->n == NPY_MAX_DIMS) return fail(err, en, STILE_ERR_FORMAT, "shape has more than 8 dimensions");
        if (c->p == c->end || *c->p < '0' || *c->p > '9')
            return fail(err, en, STILE_ERR_FORMAT, "shape has a bad dimension at header byte %ld: expected a whole number >= 0", pos(c));
        if (*c->p == '0' && c->p + 1 < c->end && c->p[1] >= '0' && c->p[1] <= '9')
            return fail(err, en, STILE_ERR_FORMAT, "shape has a bad dimension at header byte %ld: a leading zero", pos(c));
        int64_t d = 0;
        for (; c->p < c->end && *c->p >= '0' && *c->p <= '9'; c->p++) {
            d = d * 10 + (*c->p - '0');
            if (d > NPY_MAX_ELEMENTS) return fail(err, en, STILE_ERR_FORMAT, "shape is absurdly large (over 2^36 elements)");
        }
        if (d > 0 && count > NPY_MAX_ELEMENTS / d) return fail(err, en, STILE_ERR_FORMAT, "shape is absurdly large (over 2^36 elements)");
        count *= d;
        v->dims[v->n++] = d;
        skip_spaces(c);
        comma = at(c, ',');
        if (comma) {
            c->p++;
            skip_spaces(c);
        } else if (!at(c, ')')) {
            return fail(err, en, STILE_ERR_FORMAT, "shape is malformed at header byte %ld: expected ',' or ')'", pos(c));
        }
    }
    if (v->n == 1 && !comma) /* (3) is the number 3 in Python, not a tuple */
        return fail(err, en, STILE_ERR_FORMAT, "shape is malformed: a one-dimensional shape is written (N,)");
    c->p++; /* ')' */
    return STILE_OK;
}

static stile_status parse_value(cursor *c, value *v, char *err, size_t en)
{
    if (at(c, '\'') || at(c, '"')) return parse_string(c, v, err, en);
    if (at(c, '(')) return parse_tuple(c, v, err, en);
    const char *w = c->p;
    while (c->p < c->end && ((*c->p >= 'A' && *c->p <= 'Z') || (*c->p >= 'a' && *c->p <= 'z') || (*c->p >= '0' && *c->p <= '9') || *c->p == '_'))
        c->p++;
    const size_t n = (size_t)(c->p - w);
    v->kind = V_BOOL;
    if (n == 4 && memcmp(w, "True", 4) == 0) v->b = 1;
    else if (n == 5 && memcmp(w, "False", 5) == 0) v->b = 0;
    else if (n) return fail(err, en, STILE_ERR_FORMAT, "header byte %ld: %.*s is not a value numpy writes", (long)(w - c->start), n > 20 ? 20 : (int)n, w);
    else return fail(err, en, STILE_ERR_FORMAT, "header byte %ld: expected a value", pos(c));
    return STILE_OK;
}

enum { K_DESCR, K_FORTRAN, K_SHAPE, K_COUNT };
static const char *const key_names[K_COUNT] = {"descr", "fortran_order", "shape"};

stile_status npy_parse_header(const char *hdr, size_t len, npy_array *a, char *err, size_t en)
{
    memset(a, 0, sizeof *a);
    cursor c = {hdr, hdr, hdr + len};
    if (!at(&c, '{')) return fail(err, en, STILE_ERR_FORMAT, "header is not a dict");
    c.p++;
    value vals[K_COUNT];
    int seen[K_COUNT] = {0};
    stile_status st;
    for (;;) {
        skip_spaces(&c);
        if (at(&c, '}')) break; /* {} or a trailing comma */
        if (!at(&c, '\'') && !at(&c, '"')) return fail(err, en, STILE_ERR_FORMAT, "header byte %ld: expected a quoted key", pos(&c));
        value key;
        if ((st = parse_string(&c, &key, err, en)) != STILE_OK) return st;
        int k = 0;
        while (k < K_COUNT && !(strlen(key_names[k]) == key.len && memcmp(key_names[k], key.s, key.len) == 0)) k++;
        if (k == K_COUNT)
            return fail(err, en, STILE_ERR_FORMAT, "unknown key '%.*s' (numpy writes 'descr', 'fortran_order' and 'shape')",
                        key.len > 40 ? 40 : (int)key.len, key.s);
        if (seen[k]++) return fail(err, en, STILE_ERR_FORMAT, "key '%s' appears twice", key_names[k]);
        skip_spaces(&c);
        if (!at(&c, ':')) return fail(err, en, STILE_ERR_FORMAT, "header byte %ld: expected ':' after '%s'", pos(&c), key_names[k]);
        c.p++;
        skip_spaces(&c);
        if ((st = parse_value(&c, &vals[k], err, en)) != STILE_OK) return st;
        skip_spaces(&c);
        if (at(&c, ',')) c.p++;
        else if (!at(&c, '}')) return fail(err, en, STILE_ERR_FORMAT, "header byte %ld: expected ',' or '}' after '%s'", pos(&c), key_names[k]);
    }
    c.p++; /* '}' */
    skip_spaces(&c);
    if (c.end - c.p != 1 || *c.p != '\n')
        return fail(err, en, STILE_ERR_FORMAT, "header byte %ld: after the dict only spaces and a final newline may follow", pos(&c));
    for (int k = 0; k < K_COUNT; k++)
        if (!seen[k]) return fail(err, en, STILE_ERR_FORMAT, "header lacks '%s'", key_names[k]);

    const value *d = &vals[K_DESCR], *f = &vals[K_FORTRAN], *s = &vals[K_SHAPE];
    if (d->kind != V_STRING) return fail(err, en, STILE_ERR_FORMAT, "'descr' must be a string");
    if (f->kind != V_BOOL) return fail(err, en, STILE_ERR_FORMAT, "'fortran_order' must be True or False");
    if (s->kind != V_TUPLE) return fail(err, en, STILE_ERR_FORMAT, "'shape' must be a tuple");
    if (d->len == 3 && memcmp(d->s, "<f4", 3) == 0) a->dtype = STILE_DTYPE_F32;
    else if (d->len == 3 && memcmp(d->s, "<f2", 3) == 0) a->dtype = STILE_DTYPE_F16;
    else if (d->len == 3 && memcmp(d->s, "<u2", 3) == 0) a->dtype = STILE_DTYPE_BF16;
    else
        return fail(err, en, STILE_ERR_FORMAT, "dtype '%.*s' is not supported (use '<f4' for f32, '<f2' for f16, '<u2' holding bf16 bits)",
                    d->len > 20 ? 20 : (int)d->len, d->s);
    if (f->b) return fail(err, en, STILE_ERR_FORMAT, "fortran_order arrays are not supported");
    a->ndim = s->n;
    a->count = 1;
    for (int i = 0; i < s->n; i++) {
        a->shape[i] = s->dims[i];
        a->count *= s->dims[i];
    }
    return STILE_OK;
}

/* ---- reading: from a stream or from memory, the same checks ---- */

typedef struct source {
    FILE *fp;                 /* a stream, or */
    const unsigned char *mem; /* memory */
    size_t size, at;
    long long avail;          /* bytes from here to the end, -1 when unknown (a pipe) */
} source;

static size_t src_read(source *s, void *dst, size_t n)
{
    if (s->fp) return fread(dst, 1, n, s->fp);
    const size_t k = s->size - s->at < n ? s->size - s->at : n;
    if (k) memcpy(dst, s->mem + s->at, k);
    s->at += k;
    return k;
}

/* A short read: a stream's error, else the file ends early. */
static stile_status short_read(const source *s, const char *pfx, const char *where, char *err, size_t en)
{
    if (s->fp && ferror(s->fp)) return fail(err, en, STILE_ERR_IO, "%s%s", pfx, strerror(errno ? errno : EIO));
    return fail(err, en, STILE_ERR_FORMAT, "%struncated: the file ends inside the %s", pfx, where);
}

static stile_status read_npy(source *src, const char *name, npy_array *a, char *err, size_t en)
{
    memset(a, 0, sizeof *a);
    char pfx[300] = "";
    if (name) snprintf(pfx, sizeof pfx, "%.280s: ", name);
    unsigned char pre[12];
    size_t got = src_read(src, pre, 10);
    if (got < 6 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        if (src->fp && ferror(src->fp)) return short_read(src, pfx, "", err, en);
        return fail(err, en, STILE_ERR_FORMAT, "%snot a .npy file (bad magic)", pfx);
    }
    if (got < 10) return short_read(src, pfx, "preamble", err, en);
    if ((pre[6] < 1 || pre[6] > 3) || pre[7] != 0) return fail(err, en, STILE_ERR_FORMAT, "%sunknown .npy version %u.%u", pfx, pre[6], pre[7]);
    size_t used = 10, hlen = pre[8] | (size_t)pre[9] << 8;
    if (pre[6] > 1) {
        if (src_read(src, pre + 10, 2) != 2) return short_read(src, pfx, "preamble", err, en);
        used = 12;
        hlen |= (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    }
    if (hlen > NPY_MAX_HEADER)
        return fail(err, en, STILE_ERR_FORMAT, "%sheader length %zu is over %d bytes (numpy's own limit)", pfx, hlen, NPY_MAX_HEADER);
    char hdr[NPY_MAX_HEADER];
    if (src_read(src, hdr, hlen) != hlen) return short_read(src, pfx, "header", err, en);
    used += hlen;
    char why[256];
    stile_status st = npy_parse_header(hdr, hlen, a, why, sizeof why);
    if (st != STILE_OK) return fail(err, en, st, "%s%s", pfx, why);

    const size_t bytes = (size_t)a->count * stile_dtype_size(a->dtype);
    if (src->avail >= 0) { /* the size is known: compare before allocating anything */
        const long long have = src->avail - (long long)used;
        if (have < 0 || (unsigned long long)have < bytes)
            return fail(err, en, STILE_ERR_FORMAT, "%struncated: the header claims %zu bytes of data, the file has %lld", pfx, bytes,
                        have < 0 ? 0 : have);
        if ((unsigned long long)have > bytes)
            return fail(err, en, STILE_ERR_FORMAT, "%strailing bytes after the data: the header claims %zu bytes of data, the file has %lld",
                        pfx, bytes, have);
    }
    /* Read into a buffer that grows (from 1 MiB) as bytes arrive, so that a stream whose header
     * lies costs about what it holds, not what it claims. */
    size_t cap = bytes < ((size_t)1 << 20) ? bytes : (size_t)1 << 20, have = 0;
    unsigned char *data = malloc(cap ? cap : 1);
    if (!data) return fail(err, en, STILE_ERR_OUT_OF_MEMORY, "%sout of memory for the data", pfx);
    while (have < bytes) {
        if (have == cap) {
            size_t ncap = cap * 2 < bytes ? cap * 2 : bytes;
            unsigned char *g = realloc(data, ncap);
            if (!g) {
                free(data);
                return fail(err, en, STILE_ERR_OUT_OF_MEMORY, "%sout of memory for the data", pfx);
            }
            data = g;
            cap = ncap;
        }
        size_t k = src_read(src, data + have, cap - have);
        have += k;
        if (k == 0) break;
    }
    if (have < bytes) {
        free(data);
        if (src->fp && ferror(src->fp)) return short_read(src, pfx, "data", err, en);
        return fail(err, en, STILE_ERR_FORMAT, "%struncated: the header claims %zu bytes of data, the file has %zu", pfx, bytes, have);
    }
    unsigned char extra;
    if (src_read(src, &extra, 1) != 0) {
        free(data);
        return fail(err, en, STILE_ERR_FORMAT, "%strailing bytes after the data", pfx);
    }
    a->data = data;
    return STILE_OK;
}

stile_status npy_read_mem(const void *bytes, size_t size, npy_array *a, char *err, size_t en)
{
    source s = {.mem = bytes, .size = bytes ? size : 0, .avail = bytes ? (long long)size : 0};
    return read_npy(&s, NULL, a, err, en);
}

stile_status npy_read_fp(FILE *fp, const char *name, npy_array *a, char *err, size_t en)
{
    source s = {.fp = fp, .avail = -1};
    struct stat st;
    long long at = ftello(fp);
    if (fileno(fp) >= 0 && fstat(fileno(fp), &st) == 0 && S_ISREG(st.st_mode) && at >= 0)
        s.avail = at <= (long long)st.st_size ? (long long)st.st_size - at : 0;
    return read_npy(&s, name, a, err, en);
}

stile_status npy_read(const char *path, npy_array *a, char *err, size_t en)
{
    memset(a, 0, sizeof *a);
    FILE *fp = fopen(path, "rb");
    if (!fp) return fail(err, en, STILE_ERR_IO, "%s: %s", path, strerror(errno));
    stile_status st = npy_read_fp(fp, path, a, err, en);
    fclose(fp);
    return st;
}

/* ---- writing ---- */

stile_status npy_stage(stile_out_set *set, const char *path, stile_dtype dtype, int ndim, const int64_t *shape, const void *data,
                       char *err, size_t en)
{
    if (ndim < 0 || ndim > NPY_MAX_DIMS) return fail(err, en, STILE_ERR_INVALID_ARGUMENT, "%s: %d dimensions", path, ndim);
    const char *descr = dtype == STILE_DTYPE_F32 ? "<f4" : dtype == STILE_DTYPE_F16 ? "<f2" : "<u2";
    char hdr[512], shp[256] = "";
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        size_t l = strlen(shp);
        snprintf(shp + l, sizeof shp - l, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
        count *= shape[i];
    }
    int n = snprintf(hdr, sizeof hdr, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shp);
    /* spaces, then '\n', so that the data starts at a multiple of 64 as numpy writes it */
    const int pad = (64 - (10 + n + 1) % 64) % 64;
    memset(hdr + n, ' ', (size_t)pad);
    hdr[n + pad] = '\n';
    const unsigned hl = (unsigned)(n + pad + 1);
    const unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    const stile_out_piece pieces[3] = {{pre, sizeof pre}, {hdr, hl}, {data, (size_t)count * stile_dtype_size(dtype)}};
    return stile_out_stage(set, path, pieces, 3, err, en);
}

stile_status npy_write(const char *path, stile_dtype dtype, int ndim, const int64_t *shape, const void *data, char *err, size_t en)
{
    stile_out_set *set = NULL;
    if (stile_out_set_create(&set) != STILE_OK) return fail(err, en, STILE_ERR_OUT_OF_MEMORY, "%s: out of memory", path);
    stile_status st = npy_stage(set, path, dtype, ndim, shape, data, err, en);
    if (st == STILE_OK) st = stile_out_commit(set, err, en);
    stile_out_set_destroy(&set);
    return st;
}
