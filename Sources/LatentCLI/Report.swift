import ArgumentParser
import Foundation
import LatentModels
import LatentEvaluation
import LatentTraining

/// `latent report` (named ReportCommand so that it does not shadow the library's `Report`).
struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML report of a `train` or `compare` run directory.",
        discussion: "Curves (train/test NELBO, test KL, test Rec, samples/s per epoch) as inline SVG, the final "
            + "evaluation table, the run's flags, and sample and reconstruction grids embedded as PNG data URIs.")

    @Option(name: .customLong("run"), help: "Run directory written by `latent train --out` or `latent compare --out`.")
    var runDirectory: String
    @Option(help: "Output HTML file.") var out: String = "report.html"
    @Option(help: "Directory with the IDX files for the reconstructions (default: the one the model was trained on).")
    var data: String?
    @Option(help: "Seed of the prior samples.") var seed: UInt64 = 0

    func run() throws {
        try reportingErrors {
            let html = try Report.html(run: runDirectory, data: data, seed: seed) { printError("warning: " + $0) }
            try Report.write(html, to: out)
            printError("wrote \(out) (\(html.utf8.count / 1024) KiB)")
        }
    }
}
