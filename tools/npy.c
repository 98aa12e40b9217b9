/* .npy reader and writer (see npy.h). The reader trusts nothing: magic, version, header length,
 * dict keys, dtype, order, shape and data length are all checked before anything is used. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "npy.h"

/* More elements than this is not a tensor anyone passes to a CLI: refuse before allocating. */
#define NPY_MAX_ELEMENTS (INT64_C(1) << 36)

#include <stdarg.h>

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

/* Find 'key': in the header and return a pointer just after the colon and spaces. */
static const char *find_key(const char *hdr, const char *key)
{
    char pat[32];
    snprintf(pat, sizeof pat, "'%s'", key);
    const char *k = strstr(hdr, pat);
    if (!k) return NULL;
    k += strlen(pat);
    while (*k == ' ') k++;
    if (*k != ':') return NULL;
    k++;
    while (*k == ' ') k++;
    return k;
}

stile_status npy_parse_header(const char *hdr, size_t len, npy_array *a, char *err, size_t en)
{
    memset(a, 0, sizeof *a);
    if (len < 2 || hdr[0] != '{') return fail(err, en, STILE_ERR_FORMAT, "header is not a dict");
    const char *d = find_key(hdr, "descr"), *f = find_key(hdr, "fortran_order"), *s = find_key(hdr, "shape");
    if (!d || !f || !s) return fail(err, en, STILE_ERR_FORMAT, "header lacks %s", !d ? "'descr'" : !f ? "'fortran_order'" : "'shape'");
    if (strncmp(d, "'<f4'", 5) == 0) a->dtype = STILE_DTYPE_F32;
    else if (strncmp(d, "'<f2'", 5) == 0) a->dtype = STILE_DTYPE_F16;
    else if (strncmp(d, "'<u2'", 5) == 0) a->dtype = STILE_DTYPE_BF16;
    else {
        char descr[24] = "";
        sscanf(d, "%20[^,}]", descr);
        return fail(err, en, STILE_ERR_FORMAT,
                    "dtype %s is not supported (use '<f4' for f32, '<f2' for f16, '<u2' holding bf16 bits)", descr);
    }
    if (strncmp(f, "False", 5) != 0) return fail(err, en, STILE_ERR_FORMAT, "fortran_order arrays are not supported");
    if (*s != '(') return fail(err, en, STILE_ERR_FORMAT, "shape is not a tuple");
    s++;
    a->count = 1;
    for (;;) {
        while (*s == ' ') s++;
        if (*s == ')') break;
        if (a->ndim == NPY_MAX_DIMS) return fail(err, en, STILE_ERR_FORMAT, "more than 8 dimensions");
        char *end;
        errno = 0;
        long long v = strtoll(s, &end, 10);
        if (end == s || errno || v < 0) return fail(err, en, STILE_ERR_FORMAT, "shape has a bad dimension");
        if (v > 0 && a->count > NPY_MAX_ELEMENTS / v)
            return fail(err, en, STILE_ERR_FORMAT, "shape is absurdly large (over 2^36 elements)");
        a->shape[a->ndim++] = v;
        a->count *= v;
        s = end;
        while (*s == ' ') s++;
        if (*s == ',') s++;
        else if (*s != ')') return fail(err, en, STILE_ERR_FORMAT, "shape is malformed");
    }
    return STILE_OK;
}

stile_status npy_read(const char *path, npy_array *a, char *err, size_t en)
{
    memset(a, 0, sizeof *a);
    FILE *fp = fopen(path, "rb");
    if (!fp) return fail(err, en, STILE_ERR_IO, "%s: %s", path, strerror(errno));
    stile_status st = STILE_OK;
    unsigned char pre[12];
    char *hdr = NULL;
    if (fread(pre, 1, 10, fp) != 10 || memcmp(pre, "\x93NUMPY", 6) != 0) {
        st = fail(err, en, STILE_ERR_FORMAT, "%s: not a .npy file (bad magic)", path);
        goto out;
    }
    size_t hlen;
    if (pre[6] == 1) hlen = pre[8] | (size_t)pre[9] << 8;
    else if (pre[6] == 2 || pre[6] == 3) {
        if (fread(pre + 10, 1, 2, fp) != 2) { st = fail(err, en, STILE_ERR_FORMAT, "%s: truncated header", path); goto out; }
        hlen = pre[8] | (size_t)pre[9] << 8 | (size_t)pre[10] << 16 | (size_t)pre[11] << 24;
    } else {
        st = fail(err, en, STILE_ERR_FORMAT, "%s: unknown .npy version", path);
        goto out;
    }
    if (hlen > (1u << 20)) { st = fail(err, en, STILE_ERR_FORMAT, "%s: header length is absurd", path); goto out; }
    hdr = malloc(hlen + 1);
    if (!hdr) { st = fail(err, en, STILE_ERR_OUT_OF_MEMORY, "%s: out of memory", path); goto out; }
    if (fread(hdr, 1, hlen, fp) != hlen) { st = fail(err, en, STILE_ERR_FORMAT, "%s: truncated header", path); goto out; }
    hdr[hlen] = 0;
    char why[200];
    st = npy_parse_header(hdr, hlen, a, why, sizeof why);
    if (st != STILE_OK) { fail(err, en, st, "%s: %s", path, why); goto out; }
    size_t bytes = (size_t)a->count * stile_dtype_size(a->dtype);
    a->data = malloc(bytes ? bytes : 1);
    if (!a->data) { st = fail(err, en, STILE_ERR_OUT_OF_MEMORY, "%s: out of memory for the data", path); goto out; }
    if (fread(a->data, 1, bytes, fp) != bytes) {
        st = fail(err, en, STILE_ERR_FORMAT, "%s: truncated: the data is shorter than its shape says", path);
        goto out;
    }
    if (fgetc(fp) != EOF) { st = fail(err, en, STILE_ERR_FORMAT, "%s: trailing bytes after the data", path); goto out; }
out:
    free(hdr);
    fclose(fp);
    if (st != STILE_OK) npy_free(a);
    return st;
}

stile_status npy_write(const char *path, stile_dtype dtype, int ndim, const int64_t *shape, const void *data, char *err,
                       size_t en)
{
    const char *descr = dtype == STILE_DTYPE_F32 ? "<f4" : dtype == STILE_DTYPE_F16 ? "<f2" : "<u2";
    char dict[256], shp[160] = "";
    int64_t count = 1;
    for (int i = 0; i < ndim; i++) {
        size_t l = strlen(shp);
        snprintf(shp + l, sizeof shp - l, "%lld,%s", (long long)shape[i], i + 1 < ndim ? " " : "");
        count *= shape[i];
    }
    int n = snprintf(dict, sizeof dict, "{'descr': '%s', 'fortran_order': False, 'shape': (%s), }", descr, shp);
    int total = 10 + n + 1;
    int pad = (64 - total % 64) % 64;
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s.tmp.%d", path, (int)getpid());
    FILE *fp = fopen(tmp, "wb");
    if (!fp) return fail(err, en, STILE_ERR_IO, "%s: %s", tmp, strerror(errno));
    unsigned hl = (unsigned)(n + pad + 1);
    unsigned char pre[10] = {0x93, 'N', 'U', 'M', 'P', 'Y', 1, 0, (unsigned char)(hl & 0xff), (unsigned char)(hl >> 8)};
    size_t bytes = (size_t)count * stile_dtype_size(dtype);
    int ok = fwrite(pre, 1, 10, fp) == 10 && fwrite(dict, 1, (size_t)n, fp) == (size_t)n;
    for (int i = 0; ok && i < pad; i++) ok = fputc(' ', fp) != EOF;
    ok = ok && fputc('\n', fp) != EOF && fwrite(data, 1, bytes, fp) == bytes;
    ok = (fclose(fp) == 0) && ok;
    if (!ok || rename(tmp, path) != 0) {
        int e = errno;
        unlink(tmp);
        return fail(err, en, STILE_ERR_IO, "%s: %s", path, strerror(e ? e : EIO));
    }
    return STILE_OK;
}
