// Trains the reference VAE on Fashion-MNIST for a few hundred steps, then prints its test NELBO and IWAE bounds.
//
//   swift run -c release train-vae [STEPS] [RUN_DIRECTORY]      default: 600 steps (one epoch) into runs/example
import Foundation
import LatentData
import LatentEvaluation
import LatentModels
import LatentTraining

let arguments = CommandLine.arguments.dropFirst()
var options = TrainingOptions()
options.configuration = ModelConfiguration(model: .vae, posterior: .diagonal, hidden: [300, 300], latent: 10)
options.iterations = arguments.first.flatMap { Int($0) } ?? 600
options.out = arguments.dropFirst().first ?? "runs/example"
options.threads = 2

do {
    // Loads Fashion-MNIST from `options.data` (Debian's dataset-fashion-mnist package).
    let session = try TrainingSession(options: options)
    _ = try session.run { progress in
        if progress.step % 100 == 0 { print("step \(progress.step)/\(progress.totalSteps)  NELBO \(progress.runningNELBO)") }
    }

    let test = session.evaluator.evaluate(binarized: session.testBinarized, count: session.testCount)
    print("test NELBO", test.nelbo / Double(test.examples))

    let bounds = try ImportanceBoundEvaluator(model: session.model, threads: options.threads)
        .evaluate(binarized: session.testBinarized, count: 1000, sampleCounts: [1, 10, 100])
    for (m, negativeBound) in bounds.bounds.sorted(by: { $0.key < $1.key }) {
        print("−L_\(m) on 1000 test images", negativeBound)
    }
    print("checkpoint in", options.out)
} catch {
    print("error: \(error)")
    exit(1)
}
