import ArgumentParser
import Foundation
import LatentData
import LatentModels

struct Train: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Train a model; writes DIR/checkpoint, DIR/metrics.jsonl and DIR/options.json.")

    @OptionGroup var model: ModelOptions
    @OptionGroup var dataOptions: DataOptions
    @Option(help: "Minibatch size.") var batch: Int = 100
    @Option(help: "Adam learning rate.") var lr: Double = 1e-3
    @Option(help: "Epochs (passes over the training set).") var epochs: Int?
    @Option(help: "Total optimization steps (instead of --epochs).") var iterations: Int?
    @Option(help: "Random seed (initialization, shuffling, binarization, noise).") var seed: UInt64 = 0
    @Option(help: "Worker threads (default: all cores).") var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    @Option(help: "Output directory.") var out: String = "runs/latest"
    @Option(help: "Use only the first N training images.") var trainLimit: Int?
    @Option(help: "Use only the first N test images for the per-epoch evaluation.") var testLimit: Int?

    func validate() throws {
        try requireFinite(lr, "--lr")
        guard lr > 0 else { throw ValidationError("--lr must be positive (got \(lr))") }
        guard batch > 0 else { throw ValidationError("--batch must be at least 1 (got \(batch))") }
        guard threads > 0 else { throw ValidationError("--threads must be at least 1 (got \(threads))") }
        if epochs != nil && iterations != nil {
            throw ValidationError("give either --epochs or --iterations, not both")
        }
        if let epochs, epochs <= 0 { throw ValidationError("--epochs must be at least 1 (got \(epochs))") }
        if let iterations, iterations <= 0 { throw ValidationError("--iterations must be at least 1 (got \(iterations))") }
    }

    func run() throws {
        try reportingErrors {
            var options = TrainingOptions()
            options.configuration = model.configuration
            options.batch = batch
            options.learningRate = lr
            options.epochs = iterations == nil ? (epochs ?? 20) : nil
            options.iterations = iterations
            options.seed = seed
            options.threads = threads
            options.data = dataOptions.data
            options.out = out
            options.trainLimit = trainLimit
            options.testLimit = testLimit
            let session = try TrainingSession(options: options)
            printError("training \(options.configuration.model.rawValue) (\(options.configuration.posterior.rawValue) "
                + "posterior, k = \(options.configuration.latent), \(session.model.parameterCount) parameters) on "
                + "\(session.dataset.train.count) images, batch \(batch), \(threads) thread(s), \(session.totalSteps) steps")
            let bar = ProgressLine()
            let final = try session.run { p in
                bar.update(String(format: "epoch %d/%d  step %d/%d  NELBO %.2f  %.0f samples/s  ETA %@",
                                  p.epoch, p.epochs, p.step, p.totalSteps, p.runningNELBO, p.samplesPerSecond,
                                  formatDuration(p.etaSeconds)), final: p.step == p.totalSteps)
            }
            bar.finish()
            print("|  epoch |   step | train NELBO | test NELBO |  test KL | test Rec |  samples/s |")
            print("|-------:|-------:|------------:|-----------:|---------:|---------:|-----------:|")
            for m in session.history {
                print(String(format: "| %6d | %6d | %11.2f | %10.2f | %8.2f | %8.2f | %10.0f |", m.epoch, m.step,
                             m.train_nelbo, m.test_nelbo, m.test_kl, m.test_rec, m.samples_per_second))
            }
            print(String(format: "final test NELBO %.2f (KL %.2f, Rec %.2f) on %d images; checkpoint in %@",
                         final.test_nelbo, final.test_kl, final.test_rec, session.testCount, out))
        }
    }
}

/// A progress line on stderr: redrawn in place on a terminal, one plain line every few seconds otherwise.
final class ProgressLine {
    let isTerminal = isatty(STDERR_FILENO) != 0
    var lastPlain = Date.distantPast
    var drawn = false

    func update(_ text: String, final: Bool) {
        if isTerminal {
            printError("\r\u{1B}[K" + text, terminator: "")
            drawn = true
        } else if final || Date().timeIntervalSince(lastPlain) >= 5 {
            lastPlain = Date()
            printError(text)
        }
    }

    func finish() {
        if drawn { printError("") }
    }
}

func formatDuration(_ seconds: Double) -> String {
    guard seconds.isFinite else { return "?" }
    let s = Int(seconds.rounded())
    return s >= 3600 ? "\(s / 3600)h\(s % 3600 / 60)m" : s >= 60 ? "\(s / 60)m\(s % 60)s" : "\(s)s"
}
