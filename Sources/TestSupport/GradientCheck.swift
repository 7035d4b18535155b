import LatentCore

/// Relative error |a − b| / max(|a|, |b|, floor): the measure every gradient and reference check uses.
public func relativeError(_ a: Double, _ b: Double, floor: Double = 1e-8) -> Double {
    abs(a - b) / max(abs(a), abs(b), floor)
}

/// Largest relative error between two equally long arrays, with the index where it occurs.
///
/// A NaN on either side (an all-NaN gradient, a value missing from a fixture) is an infinite error, so that it fails
/// every `XCTAssertLessThan`; so is an infinity that the other side does not equal.
public func maxRelativeError(_ a: [Double], _ b: [Double], floor: Double = 1e-8) -> (error: Double, index: Int) {
    precondition(a.count == b.count, "maxRelativeError: \(a.count) vs \(b.count) values")
    var worst = (error: 0.0, index: -1)
    for i in 0..<a.count {
        let e = a[i] == b[i] ? 0 : relativeError(a[i], b[i], floor: floor)
        if e.isNaN { return (.infinity, i) }
        if e > worst.error { worst = (e, i) }
    }
    return worst
}

/// Central finite differences of a scalar function of `x` at the given indices (all when nil), step h.
///
/// `x` is restored after every probe. The step 1e-5 balances truncation (O(h²)) against rounding in Double.
public func numericalGradient(
    of f: () -> Double, at x: UnsafeMutablePointer<Double>, indices: [Int], step h: Double = 1e-5
) -> [Double] {
    indices.map { i in
        let saved = x[i]
        x[i] = saved + h
        let plus = f()
        x[i] = saved - h
        let minus = f()
        x[i] = saved
        return (plus - minus) / (2 * h)
    }
}

/// Error between an analytic and a numerical gradient measured against the gradient's overall scale, so entries
/// that are nearly zero do not dominate: max_i |a_i − n_i| / max(max_j |n_j|, floor). A NaN or infinity on either
/// side, or unequal lengths, is an infinite error (`max` would otherwise skip a NaN).
public func scaledGradientError(analytic: [Double], numerical: [Double], floor: Double = 1e-6) -> Double {
    guard analytic.count == numerical.count, (analytic + numerical).allSatisfy({ $0.isFinite }) else { return .infinity }
    let scale = max(numerical.map(abs).max() ?? 0, floor)
    return zip(analytic, numerical).map { abs($0 - $1) }.max().map { $0 / scale } ?? 0
}
