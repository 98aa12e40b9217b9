/* dtype conversions: IEEE half and bfloat16 <-> float, round to nearest even. */
#include <math.h>
#include <string.h>

#include "stile_internal.h"

const char *stile_dtype_name(stile_dtype dtype)
{
    switch (dtype) {
    case STILE_DTYPE_F32: return "f32";
    case STILE_DTYPE_F16: return "f16";
    case STILE_DTYPE_BF16: return "bf16";
    case STILE_DTYPE_I32: return "i32";
    }
    return NULL;
}

size_t stile_dtype_size(stile_dtype dtype)
{
    switch (dtype) {
    case STILE_DTYPE_F32: return 4;
    case STILE_DTYPE_F16: return 2;
    case STILE_DTYPE_BF16: return 2;
    case STILE_DTYPE_I32: return 4;
    }
    return 0;
}

static inline uint32_t f2u(float f) { uint32_t u; memcpy(&u, &f, 4); return u; }
static inline float u2f(uint32_t u) { float f; memcpy(&f, &u, 4); return f; }

float stile_bf16_to_float(uint16_t b) { return u2f((uint32_t)b << 16); }

uint16_t stile_float_to_bf16(float f)
{
    uint32_t u = f2u(f);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (uint16_t)((u >> 16) | 0x40); /* quiet NaN */
    u += 0x7fffu + ((u >> 16) & 1u);
    return (uint16_t)(u >> 16);
}

float stile_half_to_float(uint16_t h)
{
    uint32_t sign = (uint32_t)(h & 0x8000u) << 16;
    uint32_t exp = (h >> 10) & 0x1fu, man = h & 0x3ffu;
    if (exp == 0x1f) return u2f(sign | 0x7f800000u | (man << 13));
    if (exp == 0) {
        if (man == 0) return u2f(sign);
        float v = ldexpf((float)man, -24); /* subnormal: man * 2^-24 */
        return sign ? -v : v;
    }
    return u2f(sign | ((exp + 112u) << 23) | (man << 13));
}

uint16_t stile_float_to_half(float f)
{
    uint32_t u = f2u(f);
    uint16_t sign = (uint16_t)((u >> 16) & 0x8000u);
    uint32_t a = u & 0x7fffffffu;
    if (a > 0x7f800000u) return sign | 0x7e00u;          /* NaN */
    if (a >= 0x477ff000u) return sign | 0x7c00u;         /* overflows to Inf after rounding */
    if (a < 0x38800000u) {                               /* below the smallest normal half: 2^-14 */
        /* subnormal: value / 2^-24, rounded to nearest even */
        float v = u2f(a) * 16777216.0f;                  /* exact: multiply by 2^24 */
        float r = nearbyintf(v);                          /* default rounding mode: nearest even */
        return sign | (uint16_t)r;
    }
    uint32_t exp = (a >> 23) - 112u, man = a & 0x7fffffu;
    uint32_t h = (exp << 10) | (man >> 13);
    uint32_t rest = man & 0x1fffu;
    if (rest > 0x1000u || (rest == 0x1000u && (h & 1u))) h++;
    return sign | (uint16_t)h;
}

/* Loads and stores through memcpy: well defined at any address (stile_convert takes any buffer), and
 * a plain load or store where the address is aligned. */
float stile_load_f32(const void *base, stile_dtype dt, int64_t i)
{
    float f;
    uint16_t h;
    switch (dt) {
    case STILE_DTYPE_F32: memcpy(&f, (const char *)base + i * 4, sizeof f); return f;
    case STILE_DTYPE_F16: memcpy(&h, (const char *)base + i * 2, sizeof h); return stile_half_to_float(h);
    case STILE_DTYPE_BF16: memcpy(&h, (const char *)base + i * 2, sizeof h); return stile_bf16_to_float(h);
    case STILE_DTYPE_I32: break; /* not a value type (stile_convert refuses it) */
    }
    return NAN;
}

double stile_load_f64(const void *base, stile_dtype dt, int64_t i) { return (double)stile_load_f32(base, dt, i); }

stile_status stile_convert(const void *src, stile_dtype st, void *dst, stile_dtype dt, size_t n)
{
    if (n == 0) return STILE_OK;
    if (!src || !dst) return stile_fail(STILE_ERR_NULL_ARGUMENT, "stile_convert: %s is NULL", src ? "dst" : "src");
    if (!stile_dtype_name(st) || !stile_dtype_name(dt))
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_convert: unknown dtype %d", stile_dtype_name(st) ? (int)dt : (int)st);
    if (st == STILE_DTYPE_I32 || dt == STILE_DTYPE_I32)
        return stile_fail(STILE_ERR_INVALID_ARGUMENT, "stile_convert: i32 is an index type; it converts f32, f16 and bf16");
    for (size_t i = 0; i < n; i++) {
        float f = stile_load_f32(src, st, (int64_t)i);
        uint16_t h;
        switch (dt) {
        case STILE_DTYPE_F32: memcpy((char *)dst + i * 4, &f, sizeof f); break;
        case STILE_DTYPE_F16: h = stile_float_to_half(f); memcpy((char *)dst + i * 2, &h, sizeof h); break;
        case STILE_DTYPE_BF16: h = stile_float_to_bf16(f); memcpy((char *)dst + i * 2, &h, sizeof h); break;
        case STILE_DTYPE_I32: break; /* refused above */
        }
    }
    return STILE_OK;
}
