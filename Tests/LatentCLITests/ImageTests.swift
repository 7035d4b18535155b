import Foundation
import XCTest

/// End-to-end runs of `latent sample | reconstruct | interpolate | latent-map | report` on a tiny model trained on
/// the synthetic dataset; every PNG is checked with an independent decoder (Python's zlib and struct).
final class ImageTests: XCTestCase {
    /// One trained 2-D model shared by the tests of this class (training is the slow part).
    struct Fixture {
        var root: URL
        var data: URL
        var run: URL
    }

    nonisolated(unsafe) private static var shared: Result<Fixture, Error>?

    private func fixture() throws -> Fixture {
        if ImageTests.shared == nil {
            ImageTests.shared = Result {
                let root = URL(fileURLWithPath: NSTemporaryDirectory())
                    .appendingPathComponent("latent-image-tests-\(UUID().uuidString)")
                let data = root.appendingPathComponent("data"), run = root.appendingPathComponent("run")
                try SyntheticDataset.write(to: data)
                // 200 training images in batches of 10: 20 steps per epoch, so 60 iterations are three epochs.
                let r = try LatentCommand.run(trainArguments(data: data, out: run, latent: 2, iterations: 60))
                guard r.exitedNormally, r.status == 0 else { throw FixtureError.trainingFailed(r.stderr) }
                return Fixture(root: root, data: data, run: run)
            }
        }
        return try ImageTests.shared!.get()
    }

    override class func tearDown() {
        if case let .success(fixture)? = shared { try? FileManager.default.removeItem(at: fixture.root) }
        shared = nil
        super.tearDown()
    }

    enum FixtureError: Error { case trainingFailed(String) }

    private func trainArguments(data: URL, out: URL, latent: Int, iterations: Int) -> [String] {
        ["train", "--data", data.path, "--hidden", "16", "--latent", "\(latent)", "--iterations", "\(iterations)",
         "--batch", "10", "--threads", "2", "--seed", "7", "--out", out.path]
    }

    private func scratch(_ name: String) throws -> URL {
        try fixture().root.appendingPathComponent("\(name)-\(UUID().uuidString)")
    }

    // MARK: - sample

    func testSampleWritesAGrayscaleGrid() throws {
        let f = try fixture()
        let out = try scratch("samples.png")
        try succeed(["sample", "--checkpoint", f.run.path, "--count", "100", "--out", out.path, "--seed", "3"])
        let png = try decodePNG(out)
        // 10 × 10 tiles of 28 px with 2 px padding between and around them.
        XCTAssertEqual(png.width, 10 * 28 + 11 * 2)
        XCTAssertEqual(png.height, 10 * 28 + 11 * 2)
        XCTAssertEqual(png.pixels.count, png.width * png.height)
        XCTAssertEqual(png.pixels[0], png.pixels[png.width - 1], "padding is one grey level")
        let tile = (2..<30).flatMap { y in (2..<30).map { x in png.pixels[y * png.width + x] } }
        XCTAssertGreaterThan(Set(tile).count, 2, "a decoder mean is greyscale, not binary")

        let again = try scratch("again.png"), other = try scratch("other.png")
        try succeed(["sample", "--checkpoint", f.run.path, "--count", "100", "--out", again.path, "--seed", "3"])
        try succeed(["sample", "--checkpoint", f.run.path, "--count", "100", "--out", other.path, "--seed", "4"])
        XCTAssertEqual(try Data(contentsOf: out), try Data(contentsOf: again), "the same seed draws the same grid")
        XCTAssertNotEqual(try Data(contentsOf: out), try Data(contentsOf: other), "another seed draws another grid")

        let seven = try scratch("seven.png")
        try succeed(["sample", "--checkpoint", f.run.path, "--count", "7", "--out", seven.path])
        let small = try decodePNG(seven)
        XCTAssertEqual([small.width, small.height], [3 * 28 + 4 * 2, 3 * 28 + 4 * 2], "7 samples fill a 3 × 3 grid")
    }

    // MARK: - reconstruct

    func testReconstructPutsBinarizedImagesBesideReconstructions() throws {
        let f = try fixture()
        let out = try scratch("recon.png")
        try succeed(["reconstruct", "--checkpoint", f.run.path, "--count", "16", "--out", out.path])
        let png = try decodePNG(out)
        // 4 pairs per row (8 tiles), 4 rows.
        XCTAssertEqual(png.width, 8 * 28 + 9 * 2)
        XCTAssertEqual(png.height, 4 * 28 + 5 * 2)
        let original = (2..<30).flatMap { y in (2..<30).map { x in png.pixels[y * png.width + x] } }
        XCTAssertTrue(Set(original).isSubset(of: [0, 255]), "the test image is statically binarized")
        XCTAssertEqual(Set(original).count, 2)
        let reconstruction = (2..<30).flatMap { y in (32..<60).map { x in png.pixels[y * png.width + x] } }
        XCTAssertGreaterThan(Set(reconstruction).count, 2, "the reconstruction is a decoder mean")
    }

    // MARK: - interpolate

    func testInterpolateDrawsOneRowPerPair() throws {
        let f = try fixture()
        let out = try scratch("interp.png")
        try succeed(["interpolate", "--checkpoint", f.run.path, "--out", out.path])
        let png = try decodePNG(out)
        XCTAssertEqual([png.width, png.height], [10 * 28 + 11 * 2, 8 * 28 + 9 * 2], "defaults: 8 pairs, 10 steps")

        let small = try scratch("interp-small.png")
        try succeed(["interpolate", "--checkpoint", f.run.path, "--out", small.path, "--pairs", "3", "--steps", "5"])
        let three = try decodePNG(small)
        XCTAssertEqual([three.width, three.height], [5 * 28 + 6 * 2, 3 * 28 + 4 * 2])

        try assertCleanFailure(["interpolate", "--checkpoint", f.run.path, "--out", small.path, "--pairs", "30"],
                               mentioning: ["test images", "--pairs"])
    }

    // MARK: - latent-map

    func testLatentMapOfATwoDimensionalModel() throws {
        let f = try fixture()
        let out = try scratch("map.png")
        try succeed(["latent-map", "--checkpoint", f.run.path, "--out", out.path, "--grid", "5"])
        let png = try decodePNG(out)
        XCTAssertEqual([png.width, png.height], [5 * 28 + 6 * 2, 5 * 28 + 6 * 2])
    }

    func testLatentMapRefusesOtherLatentDimensions() throws {
        let f = try fixture()
        let run = try scratch("run3")
        try succeed(trainArguments(data: f.data, out: run, latent: 3, iterations: 10))
        let out = try scratch("map3.png")
        try assertCleanFailure(["latent-map", "--checkpoint", run.path, "--out", out.path], mentioning: ["--latent 2"])
        XCTAssertFalse(FileManager.default.fileExists(atPath: out.path))
    }

    // MARK: - image size limits

    /// Flag values whose PNG would pass the writer's 8192-pixel side are usage errors that give the limit, at once:
    /// no allocation trap, no hang, no libpng message.
    func testOversizeImagesAreRefusedWithTheLimit() throws {
        let f = try fixture()
        let out = try scratch("huge.png")
        let cases: [([String], String)] = [
            (["latent-map", "--grid", "40000"], "--grid must be at most 273 (got 40000): the image would be 1200002"),
            (["latent-map", "--grid", "\(Int.max)"], "--grid must be at most 273"),
            (["interpolate", "--steps", "\(Int.max)"], "--steps must be at most 273"),
            (["interpolate", "--steps", "100000"], "--steps must be at most 273 (got 100000): the image would be"),
            (["interpolate", "--pairs", "274"], "--pairs must be at most 273"),
            (["sample", "--count", "100000000"], "--count must be at most 74529 (got 100000000): the image would be"),
            (["sample", "--count", "\(Int.max)"], "--count must be at most 74529"),
            (["reconstruct", "--count", "18497"], "--count must be at most 18496"),
            (["reconstruct", "--count", "\(Int.max)"], "--count must be at most 18496"),
        ]
        for (arguments, expected) in cases {
            let what = arguments.joined(separator: " ")
            let r = try LatentCommand.run(arguments + ["--checkpoint", f.run.path, "--out", out.path], timeout: 30)
            assertNoCrash(r)
            XCTAssertEqual(r.status, 64, "\(what) is a usage error: \(r.stderr)")
            XCTAssertTrue(r.stderrLines.first?.contains(expected) ?? false, "\(what): \(r.stderr)")
            XCTAssertTrue(r.stderrLines.first?.contains("8192 pixels per side") ?? false, "\(what): \(r.stderr)")
            XCTAssertFalse(r.stderr.contains("libpng"), "\(what): \(r.stderr)")
            XCTAssertFalse(FileManager.default.fileExists(atPath: out.path), what)
        }
        // The limit itself is drawable: a line of 273 steps is exactly 8192 = 0x2000 pixels wide (IHDR width, height).
        try succeed(["interpolate", "--checkpoint", f.run.path, "--out", out.path, "--pairs", "1", "--steps", "273"])
        let header = [UInt8](try Data(contentsOf: out).prefix(24))
        XCTAssertEqual(Array(header.suffix(8)), [0, 0, 0x20, 0, 0, 0, 0, 32], "8192 by 28 + 2 · 2")
    }

    // MARK: - report

    func testReportIsSelfContained() throws {
        let f = try fixture()
        let out = try scratch("report.html")
        try succeed(["report", "--run", f.run.path, "--out", out.path])
        let html = try String(contentsOf: out, encoding: .utf8)
        try assertSelfContained(html)
        XCTAssertEqual(occurrences("<svg", in: html), 4, "train/test NELBO, test KL, test Rec and samples/s plots")
        XCTAssertEqual(occurrences("</svg>", in: html), 4)
        // Three epochs: each of the five curves (train NELBO, test NELBO, KL, Rec, samples/s) has three markers.
        XCTAssertEqual(occurrences("<circle", in: html), 5 * 3)
        let images = try embeddedPNGs(html)
        XCTAssertEqual(images.count, 2, "a sample grid and a reconstruction grid")
        for png in images { XCTAssertGreaterThan(png.width, 28) }
        for text in ["Final evaluation", "configuration.latent", "test NELBO", "samples/s"] {
            XCTAssertTrue(html.contains(text), "report lacks \(text)")
        }
    }

    func testReportOfAComparisonShowsFamiliesSideBySide() throws {
        let f = try fixture()
        let compare = try scratch("compare")
        try succeed(["compare", "--posteriors", "diagonal,full", "--data", f.data.path, "--hidden", "16", "--latent", "2",
                     "--iterations", "20", "--batch", "10", "--threads", "2", "--out", compare.path])
        let out = try scratch("compare.html")
        try succeed(["report", "--run", compare.path, "--out", out.path])
        let html = try String(contentsOf: out, encoding: .utf8)
        try assertSelfContained(html)
        XCTAssertEqual(occurrences("<svg", in: html), 4, "the same four plots, one curve per family")
        // One epoch per family: five curves of one point each per family.
        XCTAssertEqual(occurrences("<circle", in: html), 2 * 5)
        XCTAssertEqual(try embeddedPNGs(html).count, 4, "samples and reconstructions of both families")
        for text in [">diagonal test<", ">full test<", ">diagonal<", ">full<", "cost vs diagonal", "IWAE-100"] {
            XCTAssertTrue(html.contains(text), "report lacks \(text)")
        }
        // Each family's row carries the IWAE bound −L_100 on the test set, in the JSON and the Markdown table.
        let json = try JSONSerialization.jsonObject(
            with: Data(contentsOf: compare.appendingPathComponent("compare.json")))
        let families = try XCTUnwrap((json as? [String: Any])?["families"] as? [[String: Any]])
        XCTAssertEqual(families.count, 2)
        for family in families {
            let bound = try XCTUnwrap(family["iwae"] as? Double, "\(family)")
            XCTAssertTrue(bound.isFinite && bound > 0, "\(family)")
            XCTAssertEqual(family["iwae_samples"] as? Int, 100)
        }
        let markdown = try String(contentsOf: compare.appendingPathComponent("compare.md"), encoding: .utf8)
        XCTAssertTrue(markdown.contains("| IWAE-100 |"), markdown)
    }

    func testReportAndImageCommandsFailCleanly() throws {
        let f = try fixture()
        let missing = f.root.appendingPathComponent("no-such-run").path
        try assertCleanFailure(["report", "--run", missing, "--out", try scratch("r.html").path], mentioning: [missing])
        try assertCleanFailure(["sample", "--checkpoint", missing, "--out", try scratch("s.png").path],
                               mentioning: ["no checkpoint"])
        try assertCleanFailure(["sample", "--checkpoint", f.run.path, "--out", "/proc/no-such-dir/s.png"],
                               mentioning: ["cannot write"])
        try assertCleanFailure(["report", "--run", f.run.path, "--out", "/proc/no-such-dir/r.html"],
                               mentioning: ["cannot write"])
        // A dataset named with --data must load (the checkpoint's own, moved since, only costs the pictures).
        let noData = f.root.appendingPathComponent("no-data").path
        try assertCleanFailure(["report", "--run", f.run.path, "--data", noData, "--out", try scratch("d.html").path],
                               mentioning: [noData])
        let r = try LatentCommand.run(["sample", "--checkpoint", f.run.path, "--count", "0"])
        assertNoCrash(r)
        XCTAssertNotEqual(r.status, 0)
        XCTAssertTrue(r.stderrLines.first?.contains("--count") ?? false, r.stderr)
    }

    // MARK: - Helpers

    private func succeed(_ arguments: [String], file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try LatentCommand.run(arguments)
        assertNoCrash(r, file: file, line: line)
        XCTAssertEqual(r.status, 0, "latent \(arguments.joined(separator: " ")) failed: \(r.stderr)", file: file, line: line)
    }

    private func assertNoCrash(_ r: LatentCommand.Result, file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertTrue(r.exitedNormally, "terminated by a signal: \(r.stderr)", file: file, line: line)
        for marker in ["Fatal error", "Swift runtime failure", "Stack dump", "Backtrace", "Segmentation fault"] {
            XCTAssertFalse(r.stderr.contains(marker), "stderr shows a crash (\(marker)): \(r.stderr)", file: file, line: line)
        }
    }

    /// Non-zero exit, exactly one line on stderr naming each of `words`, no crash.
    private func assertCleanFailure(_ arguments: [String], mentioning words: [String], file: StaticString = #filePath,
                                    line: UInt = #line) throws {
        let r = try LatentCommand.run(arguments)
        let what = "latent \(arguments.joined(separator: " "))"
        assertNoCrash(r, file: file, line: line)
        XCTAssertNotEqual(r.status, 0, "\(what) succeeded", file: file, line: line)
        XCTAssertEqual(r.stderrLines.count, 1, "\(what): stderr must be one line, got:\n\(r.stderr)", file: file, line: line)
        for word in words {
            XCTAssertTrue(r.stderr.contains(word), "\(what): stderr does not mention \(word): \(r.stderr)", file: file, line: line)
        }
    }

    private func occurrences(_ needle: String, in text: String) -> Int { text.components(separatedBy: needle).count - 1 }

    /// Nothing to fetch: no http(s) reference, no scripts, external stylesheets or sources other than data URIs.
    private func assertSelfContained(_ html: String, file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertTrue(html.hasPrefix("<!DOCTYPE html>"), file: file, line: line)
        XCTAssertFalse(html.lowercased().contains("http"), "the report references http", file: file, line: line)
        for external in ["<script", "<link", "@import", "url(", "<iframe"] {
            XCTAssertFalse(html.lowercased().contains(external), "the report contains \(external)", file: file, line: line)
        }
        let sources = html.components(separatedBy: "src=\"").dropFirst()
        XCTAssertFalse(sources.isEmpty, file: file, line: line)
        for source in sources {
            XCTAssertTrue(source.hasPrefix("data:image/png;base64,"), "a non-data source: \(source.prefix(40))",
                          file: file, line: line)
        }
    }

    /// Every `data:image/png;base64,` image of the report, decoded.
    private func embeddedPNGs(_ html: String) throws -> [DecodedPNG] {
        try html.components(separatedBy: "data:image/png;base64,").dropFirst().map { rest in
            let base64 = String(rest.prefix { $0 != "\"" })
            let bytes = try XCTUnwrap(Data(base64Encoded: base64), "invalid base64")
            let path = try scratch("embedded.png")
            try bytes.write(to: path)
            return try decodePNG(path)
        }
    }

    struct DecodedPNG: Decodable {
        var width: Int
        var height: Int
        var bit_depth: Int
        var color_type: Int
        var interlace: Int
        var chunks: [String]
        var pixels: [UInt8]
    }

    /// Decodes a PNG with Python's zlib and struct (chunk CRCs checked, filters undone) and requires 8-bit grayscale.
    private func decodePNG(_ url: URL, file: StaticString = #filePath, line: UInt = #line) throws -> DecodedPNG {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["python3", "-c", ImageTests.pngDecoder, url.path]
        let output = Pipe(), errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        try process.run()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        let message = String(decoding: errors.fileHandleForReading.readDataToEndOfFile(), as: UTF8.self)
        process.waitUntilExit()
        XCTAssertEqual(process.terminationStatus, 0, "python could not decode \(url.path): \(message)", file: file, line: line)
        let png = try JSONDecoder().decode(DecodedPNG.self, from: data)
        XCTAssertEqual(png.bit_depth, 8, "bit depth", file: file, line: line)
        XCTAssertEqual(png.color_type, 0, "colour type 0 is grayscale", file: file, line: line)
        XCTAssertEqual(png.interlace, 0, file: file, line: line)
        XCTAssertEqual(png.chunks.first, "IHDR", file: file, line: line)
        XCTAssertEqual(png.chunks.last, "IEND", file: file, line: line)
        return png
    }

    static let pngDecoder = #"""
import json, struct, sys, zlib
data = open(sys.argv[1], 'rb').read()
assert data[:8] == b'\x89PNG\r\n\x1a\n', 'not a PNG signature'
pos, idat, ihdr, chunks = 8, b'', None, []
while pos < len(data):
    length, kind = struct.unpack('>I4s', data[pos:pos + 8])
    body = data[pos + 8:pos + 8 + length]
    crc, = struct.unpack('>I', data[pos + 8 + length:pos + 12 + length])
    assert zlib.crc32(kind + body) & 0xffffffff == crc, 'bad CRC in ' + kind.decode()
    chunks.append(kind.decode())
    if kind == b'IHDR':
        ihdr = struct.unpack('>IIBBBBB', body)
    elif kind == b'IDAT':
        idat += body
    pos += 12 + length
w, h, depth, ctype, _, _, interlace = ihdr
pixels = []
if depth == 8 and ctype == 0 and interlace == 0:
    raw = zlib.decompress(idat)
    assert len(raw) == h * (w + 1), 'wrong amount of image data'
    prev = [0] * w
    for y in range(h):
        kind, row = raw[y * (w + 1)], list(raw[y * (w + 1) + 1:(y + 1) * (w + 1)])
        for x in range(w):
            a = row[x - 1] if x else 0
            b = prev[x]
            c = prev[x - 1] if x else 0
            if kind == 1: row[x] = (row[x] + a) & 255
            elif kind == 2: row[x] = (row[x] + b) & 255
            elif kind == 3: row[x] = (row[x] + (a + b) // 2) & 255
            elif kind == 4:
                p = a + b - c
                pa, pb, pc = abs(p - a), abs(p - b), abs(p - c)
                row[x] = (row[x] + (a if pa <= pb and pa <= pc else b if pb <= pc else c)) & 255
            else: assert kind == 0, 'unknown filter'
        pixels += row
        prev = row
print(json.dumps({'width': w, 'height': h, 'bit_depth': depth, 'color_type': ctype, 'interlace': interlace,
                  'chunks': chunks, 'pixels': pixels}))
"""#
}
