import ArgumentParser
import Foundation
import LatentCore
import LatentModels
import LatentEvaluation
import LatentTraining

/// Comma-separated posterior families.
struct PosteriorList: ExpressibleByArgument {
    var values: [PosteriorKind]
    init?(argument: String) {
        guard let values = commaSeparated(argument, PosteriorKind.init(rawValue:)) else { return nil }
        self.values = values
    }
    init(_ values: [PosteriorKind]) { self.values = values }
    var defaultValueDescription: String { values.map(\.rawValue).joined(separator: ",") }
    static var allValueStrings: [String] { PosteriorKind.allCases.map(\.rawValue) }
}

struct Compare: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train one model per posterior family (same seed, data order, schedule) and compare them.",
        discussion: "Writes DIR/compare.json, DIR/compare.md and each family's run under DIR/<family>/.")

    @Option(help: "Posterior families to compare.") var posteriors = PosteriorList(PosteriorKind.allCases)
    @Option(parsing: .unconditional,
            help: "Samples m of the IWAE bound −L_m reported on the test set (0 leaves the column out).")
    var iw = 100
    @OptionGroup var flags: TrainingFlags

    func validate() throws {
        guard iw >= 0 else { throw ValidationError("--iw must be 0 (no bound) or a sample count ≥ 1 (got \(iw))") }
        if givenFlags().contains("--posterior") {
            throw ValidationError("compare trains each family of --posteriors; drop --posterior")
        }
        if let twice = firstRepeated(posteriors.values) {
            throw ValidationError("--posteriors lists \(twice.rawValue) twice; name each family once")
        }
        try flags.model.rejectIgnoredFlags(posteriors: posteriors.values)
    }

    func run() throws {
        try reportingErrors {
            var base = flags.options
            if flags.out == "runs/latest" { base.out = "runs/compare" }
            try base.validate()  // before the warnings: a refused --threads is one line
            if let warning = TrainingFlags.oversubscriptionWarning(threads: base.threads) { printError(warning) }
            if let note = flags.model.estimatorNote { printError(note) }
            Interruption.install()
            for family in posteriors.values {
                var options = base
                options.configuration.posterior = family
                try options.validate()  // before the directory is made and claimed
            }
            // One writer: the comparison's directory is held to the end, its families' directories by their runs.
            let lock = try RunLock.claim(creating: base.out)
            if let note = lock.unenforced { printError(note) }
            defer { withExtendedLifetime(lock) {} }
            let bar = ProgressLine()
            var current: PosteriorKind?
            let results = try Comparison.run(families: posteriors.values, base: base, iwaeSamples: iw) { family, p in
                if current != family {
                    bar.finish()
                    current = family
                    printError("training posterior \(family.rawValue)")
                }
                bar.update(String(format: "%@: epoch %d/%d  step %d/%d  NELBO %.2f  %.0f samples/s  ETA %@",
                                  family.rawValue, p.epoch, p.epochs, p.step, p.totalSteps, p.runningNELBO,
                                  p.samplesPerSecond, formatDuration(p.etaSeconds)), final: p.step == p.totalSteps)
            } shouldStop: {
                Interruption.requested
            } evaluating: {
                Interruption.immediate.store($0, ordering: .relaxed)
            }
            bar.finish()
            let table = Comparison.markdown(results)
            print(table, terminator: "")
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
            let json = try encoder.encode(["families": results])
            let directory = base.out as NSString
            for (name, data) in [("compare.json", json), ("compare.md", Data(table.utf8))] {
                let path = directory.appendingPathComponent(name)
                do {
                    try AtomicFile.write(Array(data), to: path)
                } catch let error as FileWriteError {
                    throw CheckpointError.unwritable(path: error.path, reason: error.reason)
                }
            }
            printError("wrote \(directory.appendingPathComponent("compare.json")) and compare.md")
        }
    }
}
