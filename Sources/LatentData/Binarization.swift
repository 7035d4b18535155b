import LatentCore

/// Turns grey levels into {0, 1} pixels: each pixel is 1 with probability intensity/255 (MATH.md §1 data model).
public enum Binarization {
    /// 24-bit thresholds: pixel value v is 1 when a uniform 24-bit draw is below `thresholds[v]`.
    public static let thresholds: [UInt32] = (0..<256).map { UInt32((Double($0) / 255 * Double(1 << 24)).rounded()) }

    /// Fresh Bernoulli draws for one image into `out` (dynamic binarization), from the caller's keyed stream.
    /// Two pixels per 64-bit draw, each compared as 24 bits against the pixel's threshold.
    @inlinable
    public static func sample(
        pixels: UnsafePointer<UInt8>, count: Int, thresholds: UnsafePointer<UInt32>,
        rng: inout RandomStream, into out: UnsafeMutablePointer<Float>
    ) {
        var i = 0
        while i + 1 < count {
            let r = rng.next()
            let a = UInt32(truncatingIfNeeded: r) & 0xFF_FFFF
            let b = UInt32(truncatingIfNeeded: r >> 32) & 0xFF_FFFF
            out[i] = bit(a, below: thresholds[Int(pixels[i])])
            out[i + 1] = bit(b, below: thresholds[Int(pixels[i + 1])])
            i += 2
        }
        if i < count {
            let a = UInt32(truncatingIfNeeded: rng.next()) & 0xFF_FFFF
            out[i] = bit(a, below: thresholds[Int(pixels[i])])
        }
    }

    /// `sample` for four images at once, image `lane` from lane `lane` of `rng` into `out + lane * count`: the same
    /// pixels as four calls of `sample` with the four streams, at about the cost of one (the streams step together).
    @inlinable
    public static func sample(
        pixels: (UnsafePointer<UInt8>, UnsafePointer<UInt8>, UnsafePointer<UInt8>, UnsafePointer<UInt8>), count: Int,
        thresholds: UnsafePointer<UInt32>, rng: inout RandomStreams4, into out: UnsafeMutablePointer<Float>
    ) {
        let (p0, p1, p2, p3) = pixels
        let o0 = out, o1 = out + count, o2 = out + 2 * count, o3 = out + 3 * count
        var i = 0
        while i + 1 < count {
            let r = rng.next()
            let a = SIMD4<UInt32>(truncatingIfNeeded: r) & 0xFF_FFFF
            let b = SIMD4<UInt32>(truncatingIfNeeded: r &>> 32) & 0xFF_FFFF
            o0[i] = bit(a[0], below: thresholds[Int(p0[i])])
            o0[i + 1] = bit(b[0], below: thresholds[Int(p0[i + 1])])
            o1[i] = bit(a[1], below: thresholds[Int(p1[i])])
            o1[i + 1] = bit(b[1], below: thresholds[Int(p1[i + 1])])
            o2[i] = bit(a[2], below: thresholds[Int(p2[i])])
            o2[i + 1] = bit(b[2], below: thresholds[Int(p2[i + 1])])
            o3[i] = bit(a[3], below: thresholds[Int(p3[i])])
            o3[i + 1] = bit(b[3], below: thresholds[Int(p3[i + 1])])
            i += 2
        }
        if i < count {
            let a = SIMD4<UInt32>(truncatingIfNeeded: rng.next()) & 0xFF_FFFF
            o0[i] = bit(a[0], below: thresholds[Int(p0[i])])
            o1[i] = bit(a[1], below: thresholds[Int(p1[i])])
            o2[i] = bit(a[2], below: thresholds[Int(p2[i])])
            o3[i] = bit(a[3], below: thresholds[Int(p3[i])])
        }
    }

    /// 1 if a < t, else 0, without a branch: for 24-bit a and t, a − t wraps past 2³¹ exactly when a < t. A
    /// compare-and-branch here is taken at random for every grey pixel, and its mispredictions made binarization
    /// the largest cost of a step outside the GEMMs.
    @inlinable @inline(__always)
    static func bit(_ a: UInt32, below t: UInt32) -> Float { Float((a &- t) >> 31) }

    /// The same draws as `sample(…into: UnsafeMutablePointer<Float>)`, converted to any scalar type.
    public static func sample<T: BLASScalar>(
        pixels: UnsafePointer<UInt8>, count: Int, thresholds: UnsafePointer<UInt32>,
        rng: inout RandomStream, into out: UnsafeMutablePointer<T>
    ) {
        let floats = UnsafeMutablePointer<Float>.allocate(capacity: max(1, count))
        defer { floats.deallocate() }
        sample(pixels: pixels, count: count, thresholds: thresholds, rng: &rng, into: floats)
        for i in 0..<count { out[i] = T(floats[i]) }
    }

    /// A fixed binarization of a whole image set: image i uses the stream keyed by (seed, i), so any subset agrees.
    public static func staticBinarized<T: BLASScalar>(_ images: ImageSet, seed: UInt64, as _: T.Type = T.self) -> [T] {
        let d = images.pixelsPerImage
        var out = [T](repeating: 0, count: images.count * d)
        thresholds.withUnsafeBufferPointer { th in
            images.pixels.withUnsafeBufferPointer { px in
                out.withUnsafeMutableBufferPointer { o in
                    for i in 0..<images.count {
                        var rng = RandomStream(seed: seed, purpose: .staticBinarization, index: UInt64(i))
                        sample(pixels: px.baseAddress! + i * d, count: d, thresholds: th.baseAddress!,
                               rng: &rng, into: o.baseAddress! + i * d)
                    }
                }
            }
        }
        return out
    }
}
