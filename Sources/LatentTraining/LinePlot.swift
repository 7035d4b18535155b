import Foundation
import LatentCore
import LatentEvaluation
import LatentModels
import LatentData

/// An SVG line plot drawn by hand: axes with round-number ticks, one polyline with point markers per series.
struct LinePlot {
    struct Point { var x: Double; var y: Double }
    struct Series { var label: String; var color: String; var dashed: Bool; var points: [Point] }

    var title: String
    var xLabel: String
    var yLabel: String
    var series: [Series]

    func svg(width: Double = 560, height: Double = 330) -> String {
        let all = series.flatMap(\.points).filter { $0.x.isFinite && $0.y.isFinite }
        // Legend entries flow left to right and wrap; the plot area starts below them.
        var legend = "", lx = 64.0, ly = 40.0
        for s in series {
            let w = 34 + 7 * Double(s.label.count)
            if lx + w > width - 8 && lx > 64 { lx = 64; ly += 16 }
            legend += "<line x1=\"\(coord(lx))\" y1=\"\(coord(ly - 4))\" x2=\"\(coord(lx + 22))\" y2=\"\(coord(ly - 4))\" "
                + "stroke=\"\(s.color)\" stroke-width=\"2\"\(s.dashed ? " stroke-dasharray=\"5,3\"" : "")/>"
                + "<text x=\"\(coord(lx + 26))\" y=\"\(coord(ly))\" font-size=\"12\">\(escape(s.label))</text>\n"
            lx += w
        }
        let left = 64.0, right = width - 16, top = ly + 14, bottom = height - 44
        var out = "<svg width=\"\(coord(width))\" height=\"\(coord(height))\" viewBox=\"0 0 \(coord(width)) \(coord(height))\" "
            + "role=\"img\" font-family=\"Helvetica, Arial, sans-serif\">\n"
            + "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
            + "<text x=\"\(coord(width / 2))\" y=\"18\" font-size=\"14\" text-anchor=\"middle\">\(escape(title))</text>\n"
            + legend
        guard !all.isEmpty else {
            return out + "<text x=\"\(coord(width / 2))\" y=\"\(coord((top + bottom) / 2))\" text-anchor=\"middle\">no data</text>\n</svg>"
        }
        var (x0, x1) = (all.map(\.x).min()!, all.map(\.x).max()!)
        if x1 - x0 < 1e-9 { x0 -= 0.5; x1 += 0.5 }
        let xTicks = LinePlot.ticks(x0, x1, minimumStep: 1)
        let yScale = LinePlot.ticks(all.map(\.y).min()!, all.map(\.y).max()!, extend: true)
        let (y0, y1) = (yScale.lo, yScale.hi)
        func px(_ x: Double) -> Double { left + (x - x0) / (x1 - x0) * (right - left) }
        func py(_ y: Double) -> Double { bottom - (y - y0) / (y1 - y0) * (bottom - top) }
        for t in yScale.values {
            out += "<line x1=\"\(coord(left))\" y1=\"\(coord(py(t)))\" x2=\"\(coord(right))\" y2=\"\(coord(py(t)))\" stroke=\"#e4e4e4\"/>"
                + "<text x=\"\(coord(left - 6))\" y=\"\(coord(py(t) + 4))\" font-size=\"11\" text-anchor=\"end\">\(label(t))</text>\n"
        }
        for t in xTicks.values {
            out += "<line x1=\"\(coord(px(t)))\" y1=\"\(coord(bottom))\" x2=\"\(coord(px(t)))\" y2=\"\(coord(bottom + 4))\" stroke=\"#444\"/>"
                + "<text x=\"\(coord(px(t)))\" y=\"\(coord(bottom + 17))\" font-size=\"11\" text-anchor=\"middle\">\(label(t))</text>\n"
        }
        out += "<polyline points=\"\(coord(left)),\(coord(top)) \(coord(left)),\(coord(bottom)) \(coord(right)),\(coord(bottom))\" fill=\"none\" stroke=\"#444\"/>\n"
            + "<text x=\"\(coord((left + right) / 2))\" y=\"\(coord(height - 8))\" font-size=\"12\" text-anchor=\"middle\">\(escape(xLabel))</text>\n"
            + "<text x=\"14\" y=\"\(coord((top + bottom) / 2))\" font-size=\"12\" text-anchor=\"middle\" "
            + "transform=\"rotate(-90 14 \(coord((top + bottom) / 2)))\">\(escape(yLabel))</text>\n"
        for s in series {
            let points = s.points.filter { $0.x.isFinite && $0.y.isFinite }
            let coordinates = points.map { "\(coord(px($0.x))),\(coord(py($0.y)))" }.joined(separator: " ")
            out += "<polyline points=\"\(coordinates)\" fill=\"none\" stroke=\"\(s.color)\" stroke-width=\"2\""
                + "\(s.dashed ? " stroke-dasharray=\"5,3\"" : "")/>\n"
            for p in points {
                out += "<circle cx=\"\(coord(px(p.x)))\" cy=\"\(coord(py(p.y)))\" r=\"2.5\" fill=\"\(s.color)\"/>"
            }
            out += "\n"
        }
        return out + "</svg>"
    }

    /// Round-number ticks (steps of 1, 2 or 5 × 10ⁿ, about five of them) covering [lo, hi]; with `extend` the
    /// range grows to the enclosing ticks, and a single value gets a margin of 5 % (at least 1e-3) either side.
    static func ticks(_ lo: Double, _ hi: Double, minimumStep: Double = 0, extend: Bool = false)
        -> (lo: Double, hi: Double, values: [Double]) {
        var (lo, hi) = (lo, hi)
        if hi - lo <= 1e-12 * max(1, abs(hi)) {
            let margin = max(abs(lo) * 0.05, 1e-3)
            lo -= margin
            hi += margin
        }
        let rough = (hi - lo) / 5
        let magnitude = pow(10, (log10(rough)).rounded(.down))
        let step = max(minimumStep, [1.0, 2, 5, 10].map { $0 * magnitude }.first { $0 >= rough } ?? 10 * magnitude)
        if extend {
            lo = (lo / step).rounded(.down) * step
            hi = (hi / step).rounded(.up) * step
        }
        var values: [Double] = []
        var t = (lo / step).rounded(.up) * step
        while t <= hi + step * 1e-9 && values.count < 50 {
            values.append(abs(t) < step * 1e-9 ? 0 : t)
            t += step
        }
        return (lo, hi, values)
    }
}

/// Coordinates with two decimals at most.
func coord(_ v: Double) -> String {
    let rounded = (v * 100).rounded() / 100
    return rounded == rounded.rounded() ? String(Int(rounded)) : String(format: "%.2f", rounded)
}

/// A tick label: %g keeps 0.2 as "0.2" and 40000 as "40000".
func label(_ v: Double) -> String { String(format: "%g", v) }

/// A number with a fixed count of decimals.
func fixed(_ v: Double, _ decimals: Int) -> String { String(format: "%.\(decimals)f", v) }

/// Text and attribute values escaped for HTML and SVG.
func escape(_ text: String) -> String {
    var out = ""
    out.reserveCapacity(text.count)
    for c in text {
        switch c {
        case "&": out += "&amp;"
        case "<": out += "&lt;"
        case ">": out += "&gt;"
        case "\"": out += "&quot;"
        case "'": out += "&#39;"
        default: out.append(c)
        }
    }
    return out
}
