import Foundation
import LatentCore
import LatentEvaluation
import LatentModels
import LatentData

/// Why a training report could not be built or written, and what to do about it.
public enum ReportError: Error, CustomStringConvertible, Equatable {
    /// No run directory at `path`.
    case missingRun(path: String)
    /// The run's `metrics.jsonl` is missing or holds no epoch.
    case missingMetrics(path: String)
    /// A file of the run cannot be read or decoded.
    case unreadable(path: String, reason: String)
    /// The report file cannot be written.
    case unwritable(path: String, reason: String)

    /// One line: what went wrong and what to do.
    public var description: String {
        switch self {
        case let .missingRun(path):
            return "no run directory at \(path); pass the --out directory of `latent train` or `latent compare`"
        case let .missingMetrics(path):
            return "\(path) is missing or holds no epochs; pass a directory written by a finished `latent train`"
        case let .unreadable(path, reason):
            return "cannot read \(path) (\(reason)); the run directory is incomplete or corrupt"
        case let .unwritable(path, reason):
            return "cannot write \(path): \(reason); choose a writable --out path"
        }
    }
}

/// A self-contained HTML report of a training run (`latent train --out DIR`) or of a comparison (`latent compare`):
/// inline SVG curves per epoch, the final evaluation table, the run's flags, and sample and reconstruction grids
/// embedded as PNG data URIs — one file that opens offline, with no scripts, stylesheets or fonts to fetch.
///
/// A comparison directory (it holds `compare.json`) shows one curve per posterior family in each plot.
public enum Report {
    /// The plots every report has, in order: train and test NELBO, test KL, test Rec, samples/s.
    package static let plotTitles = ["NELBO per epoch (solid: test, dashed: train)", "Test KL per epoch",
                                    "Test Rec per epoch", "Training throughput per epoch"]
    /// Prior samples in each run's sample grid.
    package static let sampleCount = 64
    /// Test images (each beside its reconstruction) in each run's reconstruction grid.
    package static let reconstructionCount = 16

    /// The HTML of the report on `directory`. `data` overrides the dataset the checkpoint names (for the
    /// reconstructions); `warning` hears about parts left out (e.g. images when the dataset is missing).
    public static func html(run directory: String, data: String? = nil, seed: UInt64 = 0,
                            warning: (String) -> Void = { _ in }) throws -> String {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw ReportError.missingRun(path: directory)
        }
        let comparePath = (directory as NSString).appendingPathComponent("compare.json")
        var families: [FamilyResult]?
        var runs: [ReportRun] = []
        var testSets = TestSetCache(override: data)
        if FileManager.default.fileExists(atPath: comparePath) {
            let results = try decodeComparison(comparePath)
            families = results
            for family in results {
                let runDirectory = (directory as NSString).appendingPathComponent(family.posterior)
                runs.append(try ReportRun(name: family.posterior, directory: runDirectory, seed: seed,
                                          testSets: &testSets, warning: warning))
            }
        } else {
            runs.append(try ReportRun(name: (directory as NSString).lastPathComponent, directory: directory, seed: seed,
                                      testSets: &testSets, warning: warning))
        }
        return ReportHTML(directory: directory, runs: runs, families: families).document()
    }

    /// Writes `html` to `path` (parent directories created).
    public static func write(_ html: String, to path: String) throws {
        do {
            try PNGWriter.writeFile(Array(html.utf8), to: path)
        } catch let ImageError.unwritable(path, reason) {
            throw ReportError.unwritable(path: path, reason: reason)
        }
    }

    static func decodeComparison(_ path: String) throws -> [FamilyResult] {
        guard let data = FileManager.default.contents(atPath: path) else {
            throw ReportError.unreadable(path: path, reason: "permission denied")
        }
        do {
            return try JSONDecoder().decode([String: [FamilyResult]].self, from: data)["families"] ?? []
        } catch {
            throw ReportError.unreadable(path: path, reason: "not the JSON `latent compare` writes")
        }
    }
}

/// Test sets loaded once per dataset directory (every family of a comparison trains on the same one).
struct TestSetCache {
    let override: String?
    var loaded: [String: Result<ImageSet, Error>] = [:]

    init(override: String?) { self.override = override }

    mutating func testImages(for checkpoint: Checkpoint) throws -> ImageSet {
        let directory = override ?? checkpoint.state.data
        if loaded[directory] == nil {
            loaded[directory] = Result {
                try Dataset.load(directory: directory, expectedPixels: checkpoint.configuration.inputs).test
            }
        }
        return try loaded[directory]!.get()
    }
}

/// One run's metrics, flags and pictures, read from its directory.
struct ReportRun {
    var name: String
    var directory: String
    var metrics: [EpochMetrics]
    /// options.json flattened to dotted keys (e.g. `configuration.latent`), values as text.
    var flags: [String: String]
    var parameters: Int?
    var samplesPNG: [UInt8]?
    var reconstructionsPNG: [UInt8]?
    /// Why a picture is missing, shown in its place.
    var notes: [String] = []

    init(name: String, directory: String, seed: UInt64, testSets: inout TestSetCache,
         warning: (String) -> Void) throws {
        self.name = name
        self.directory = directory
        metrics = try ReportRun.readMetrics(directory)
        flags = ReportRun.readFlags(directory)
        let saved: Checkpoint
        do {
            saved = try Checkpoint.load(from: directory)
        } catch {
            notes.append("no pictures: \(error)")
            warning("\(name): no pictures: \(error)")
            return
        }
        let model = VariationalAutoencoder<Float>(saved.configuration)
        model.load(saved)
        parameters = model.parameterCount
        do {
            samplesPNG = try PNGWriter.encode(Generation.sampleGrid(model, count: Report.sampleCount, seed: seed))
            let test = try testSets.testImages(for: saved)
            let count = min(Report.reconstructionCount, test.count)
            reconstructionsPNG = try PNGWriter.encode(Generation.reconstructionGrid(model, testImages: test, count: count))
        } catch {
            // A dataset named with --data must load; the checkpoint's own, perhaps moved since, only costs pictures.
            if testSets.override != nil, error is DataError { throw error }
            notes.append("pictures left out: \(error)")
            warning("\(name): pictures left out: \(error)")
        }
    }

    static func readMetrics(_ directory: String) throws -> [EpochMetrics] {
        let path = EpochMetrics.path(in: directory)
        guard let data = FileManager.default.contents(atPath: path) else { throw ReportError.missingMetrics(path: path) }
        let decoder = JSONDecoder()
        var metrics: [EpochMetrics] = []
        for (number, line) in String(decoding: data, as: UTF8.self).split(separator: "\n").enumerated()
        where !line.trimmingCharacters(in: .whitespaces).isEmpty {
            do {
                metrics.append(try decoder.decode(EpochMetrics.self, from: Data(line.utf8)))
            } catch {
                throw ReportError.unreadable(path: path, reason: "line \(number + 1) is not an epoch's metrics")
            }
        }
        guard !metrics.isEmpty else { throw ReportError.missingMetrics(path: path) }
        return metrics
    }

    /// options.json as dotted keys; empty when the file is missing or unreadable (the report says so).
    static func readFlags(_ directory: String) -> [String: String] {
        let path = TrainingOptions.path(in: directory)
        guard let data = FileManager.default.contents(atPath: path),
              let object = try? JSONSerialization.jsonObject(with: data) else { return [:] }
        var flags: [String: String] = [:]
        func flatten(_ value: Any, _ key: String) {
            switch value {
            case let dictionary as [String: Any]:
                for (k, v) in dictionary { flatten(v, key.isEmpty ? k : key + "." + k) }
            case let array as [Any]:
                flags[key] = array.map { "\($0)" }.joined(separator: ",")
            default:
                flags[key] = "\(value)"
            }
        }
        flatten(object, "")
        return flags
    }
}

/// Builds the report's HTML text from the runs read (one run, or one per family of a comparison).
struct ReportHTML {
    var directory: String
    var runs: [ReportRun]
    var families: [FamilyResult]?

    static let palette = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2", "#17becf"]
    static let style = """
        body { font: 14px/1.4 -apple-system, "Segoe UI", Helvetica, Arial, sans-serif; margin: 24px; color: #222; max-width: 1200px; }
        h1 { font-size: 22px; } h2 { font-size: 18px; margin-top: 28px; border-bottom: 1px solid #ddd; }
        table { border-collapse: collapse; margin: 8px 0; } th, td { border: 1px solid #ccc; padding: 3px 8px; }
        th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
        td.differs { font-weight: bold; background: #fff6d6; }
        .plots, .pictures, .run { display: flex; flex-wrap: wrap; gap: 16px; align-items: flex-start; }
        .family { display: flex; flex-direction: column; gap: 8px; } .family h3 { margin: 0; font-size: 15px; }
        figure { margin: 0; } figcaption { font-size: 13px; color: #555; }
        img { image-rendering: pixelated; border: 1px solid #ccc; display: block; margin-bottom: 4px; }
        .note { color: #a33; } code { background: #f3f3f3; padding: 0 3px; }
        """

    func document() -> String {
        let title = families == nil ? "Training report: \(runs[0].name)" : "Comparison report: \(runs.map(\.name).joined(separator: ", "))"
        var body = "<h1>\(escape(title))</h1>\n<p>Run directory <code>\(escape(directory))</code>.</p>\n"
        body += "<h2>Final evaluation</h2>\n" + finalTable()
        body += "<h2>Curves</h2>\n<div class=\"plots\">\n" + plots().joined(separator: "\n") + "\n</div>\n"
        body += "<h2>Samples and reconstructions</h2>\n<p>Samples: decoder means for z from the prior. "
            + "Reconstructions: statically binarized test images, each followed by its decoder mean at z = μ(x).</p>\n"
            + "<div class=\"pictures\">\n" + runs.map(pictures).joined(separator: "\n") + "\n</div>\n"
        body += "<h2>Flags</h2>\n" + flagTable()
        body += "<h2>Per-epoch metrics</h2>\n" + runs.map(epochTable).joined(separator: "\n")
        return "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>\(escape(title))</title>\n"
            + "<style>\n\(ReportHTML.style)\n</style>\n</head>\n<body>\n\(body)</body>\n</html>\n"
    }

    func color(_ run: Int) -> String { ReportHTML.palette[run % ReportHTML.palette.count] }

    func plots() -> [String] {
        func points(_ m: [EpochMetrics], _ value: (EpochMetrics) -> Double) -> [LinePlot.Point] {
            m.map { LinePlot.Point(x: Double($0.epoch), y: value($0)) }
        }
        let single = runs.count == 1
        var nelbo: [LinePlot.Series] = []
        for (i, run) in runs.enumerated() {
            nelbo.append(.init(label: single ? "test" : "\(run.name) test", color: single ? color(1) : color(i),
                               dashed: false, points: points(run.metrics) { $0.testNELBO }))
            nelbo.append(.init(label: single ? "train" : "\(run.name) train", color: single ? color(0) : color(i),
                               dashed: true, points: points(run.metrics) { $0.trainNELBO }))
        }
        func perRun(_ singleLabel: String, _ value: @escaping (EpochMetrics) -> Double) -> [LinePlot.Series] {
            runs.enumerated().map { i, run in
                .init(label: single ? singleLabel : run.name, color: color(i), dashed: false, points: points(run.metrics, value))
            }
        }
        let titles = Report.plotTitles
        return [
            LinePlot(title: titles[0], xLabel: "epoch", yLabel: "nats per image", series: nelbo),
            LinePlot(title: titles[1], xLabel: "epoch", yLabel: "nats per image", series: perRun("test KL") { $0.testKL }),
            LinePlot(title: titles[2], xLabel: "epoch", yLabel: "nats per image", series: perRun("test Rec") { $0.testRec }),
            LinePlot(title: titles[3], xLabel: "epoch", yLabel: "samples/s", series: perRun("training samples/s") { $0.samplesPerSecond }),
        ].map { $0.svg() }
    }

    func finalTable() -> String {
        if let families {
            let m = families.first?.iwaeSamples
            let header = ["posterior", "test NELBO", "KL", "Rec"] + (m.map { ["IWAE-\($0)"] } ?? [])
                + ["active units", "mean abs corr", "samples/s", "s/epoch", "cost vs diagonal", "jitter retries",
                   "parameters"]
            let rows = families.map { r in
                [r.posterior, fixed(r.nelbo, 2), fixed(r.kl, 2), fixed(r.rec, 2)]
                    + (m == nil ? [] : [fixed(r.iwae ?? .nan, 2)])
                    + ["\(r.activeUnits)", fixed(r.meanAbsCorrelation, 3), fixed(r.samplesPerSecond, 0),
                       fixed(r.secondsPerEpoch, 2), fixed(r.costRatio, 2) + "×", "\(r.factorizationRetries)",
                       "\(r.parameters)"]
            }
            return table(header: header, rows: rows)
        }
        let run = runs[0], last = run.metrics[run.metrics.count - 1]
        let header = ["epochs", "steps", "test NELBO", "test KL", "test Rec", "train NELBO", "samples/s",
                      "training seconds", "parameters"]
        let row = ["\(last.epoch)", "\(last.step)", fixed(last.testNELBO, 2), fixed(last.testKL, 2),
                   fixed(last.testRec, 2), fixed(last.trainNELBO, 2), fixed(last.samplesPerSecond, 0),
                   fixed(run.metrics.reduce(0) { $0 + $1.seconds }, 1), run.parameters.map { "\($0)" } ?? "?"]
        return table(header: header, rows: [row])
            + "<p>Test terms are the one-sample NELBO = KL + Rec on the statically binarized test set after the last epoch.</p>\n"
    }

    func pictures(_ run: ReportRun) -> String {
        var html = runs.count > 1 ? "<div class=\"family\">\n<h3>\(escape(run.name))</h3>\n" : "<div class=\"run\">\n"
        if let png = run.samplesPNG {
            html += figure(png, caption: "\(Report.sampleCount) samples", alt: "\(run.name) samples")
        }
        if let png = run.reconstructionsPNG {
            html += figure(png, caption: "test images and reconstructions", alt: "\(run.name) reconstructions")
        }
        for note in run.notes { html += "<p class=\"note\">\(escape(note))</p>\n" }
        return html + "</div>"
    }

    func figure(_ png: [UInt8], caption: String, alt: String) -> String {
        let (width, height) = ReportHTML.pngSize(png)
        let scale = runs.count > 2 ? 1 : 2
        return "<figure><img src=\"data:image/png;base64,\(Data(png).base64EncodedString())\" "
            + "width=\"\(width * scale)\" height=\"\(height * scale)\" alt=\"\(escape(alt))\">"
            + "<figcaption>\(escape(caption))</figcaption></figure>\n"
    }

    /// Width and height from a PNG's IHDR chunk (bytes 16–23, big-endian).
    static func pngSize(_ png: [UInt8]) -> (Int, Int) {
        guard png.count >= 24 else { return (0, 0) }
        func word(_ at: Int) -> Int { png[at..<(at + 4)].reduce(0) { $0 << 8 | Int($1) } }
        return (word(16), word(20))
    }

    func flagTable() -> String {
        guard runs.contains(where: { !$0.flags.isEmpty }) else { return "<p class=\"note\">options.json not found.</p>\n" }
        let keys = Set(runs.flatMap(\.flags.keys)).sorted()
        let header = ["flag"] + runs.map(\.name)
        let rows = keys.map { key in [key] + runs.map { $0.flags[key] ?? "" } }
        let differs = keys.map { key in Set(runs.map { $0.flags[key] ?? "" }).count > 1 }
        return table(header: header, rows: rows, highlight: differs, alignNumbers: false)
    }

    func epochTable(_ run: ReportRun) -> String {
        let header = ["epoch", "step", "train NELBO", "test NELBO", "test KL", "test Rec", "samples/s", "seconds"]
        let rows = run.metrics.map { m in
            ["\(m.epoch)", "\(m.step)", fixed(m.trainNELBO, 2), fixed(m.testNELBO, 2), fixed(m.testKL, 2),
             fixed(m.testRec, 2), fixed(m.samplesPerSecond, 0), fixed(m.seconds, 2)]
        }
        return "<details\(runs.count == 1 ? " open" : "")><summary>\(escape(run.name)): \(run.metrics.count) epoch(s)</summary>\n"
            + table(header: header, rows: rows) + "</details>"
    }

    /// A table; cells that parse as numbers are right-aligned (with `alignNumbers`), rows flagged in `highlight` are emphasized.
    func table(header: [String], rows: [[String]], highlight: [Bool] = [], alignNumbers: Bool = true) -> String {
        var html = "<table>\n<tr>" + header.map { "<th>\(escape($0))</th>" }.joined() + "</tr>\n"
        for (i, row) in rows.enumerated() {
            let differs = i < highlight.count && highlight[i]
            html += "<tr>" + row.enumerated().map { column, cell in
                let numeric = alignNumbers && Double(cell.replacingOccurrences(of: "×", with: "")) != nil
                let classes = [numeric ? "num" : nil, differs && column > 0 ? "differs" : nil].compactMap { $0 }
                return "<td\(classes.isEmpty ? "" : " class=\"\(classes.joined(separator: " "))\"")>\(escape(cell))</td>"
            }.joined() + "</tr>\n"
        }
        return html + "</table>\n"
    }
}
