// 16-bit staging for the tensor-core shaders, and bf16_bits for the backward (after their DTYPE
// specialization constant: 1 f16, 2 bf16):
// q, k and v words as f16 pairs, bf16 converted (exact within f16's range, docs/backends.md), and an f32
// as bf16 bits (round to nearest even, NaN kept a quiet NaN).

// a pair of bf16 (one word) as a pair of f16
uint bf2_to_h2(uint w) { return packHalf2x16(vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u))); }

uvec4 to_h8(uvec4 w)
{
    if (DTYPE == 2) return uvec4(bf2_to_h2(w.x), bf2_to_h2(w.y), bf2_to_h2(w.z), bf2_to_h2(w.w));
    return w;
}

vec2 h2_or_bf2(uint w)
{
    if (DTYPE == 2) return vec2(uintBitsToFloat(w << 16), uintBitsToFloat(w & 0xffff0000u));
    return unpackHalf2x16(w);
}

uint scaled_h2(uint w, float s) { return packHalf2x16(h2_or_bf2(w) * s); }

uint bf16_bits(float x)
{
    uint u = floatBitsToUint(x);
    if ((u & 0x7fffffffu) > 0x7f800000u) return (u >> 16) | 0x40u;
    return (u + 0x7fffu + ((u >> 16) & 1u)) >> 16;
}
