/// One decoder block of some family, with a forward pass that keeps its activations and a
/// backward pass that turns the gradient of the output into gradients for every parameter
/// and for the input. This is the only part of layer-wise distillation that differs between
/// families (`GPT2TrainableBlock`, `LlamaTrainableBlock`); tensors, fake quantization, Adam,
/// mini-batches and the driver work on `BlockWeights` whatever the family.
///
/// A batch is `windows` × `tokens` rows of width E, the rows of one window consecutive, each
/// window starting at position 0. To train against fake-quantized weights, build the block
/// from Ŵ = dequant(quant(W)): the gradients it returns are ∂L/∂Ŵ, which the straight-
/// through estimator uses as ∂L/∂W.
public protocol TrainableBlock<Scalar> {
    associatedtype Scalar: TrainingScalar
    /// What a forward pass keeps for the backward pass.
    associatedtype Activations: BlockActivations where Activations.Scalar == Scalar

    /// The parameters the forward pass computes with.
    var weights: BlockWeights<Scalar> { get }

    /// Runs the block over `windows` windows of `tokens` rows each (`input` is [windows·tokens, E]).
    func forward(_ input: [Scalar], windows: Int, tokens: Int) -> Activations
    /// Gradients of a loss L for every parameter (in the schema's layout) and for the block
    /// input, given ∂L/∂y (`outputGradient`, shaped as the output) and a forward pass's activations.
    func backward(_ activations: Activations, outputGradient: [Scalar]) -> (weights: BlockWeights<Scalar>, input: [Scalar])
}

/// The activations a `TrainableBlock`'s forward pass keeps.
public protocol BlockActivations<Scalar>: AnyObject {
    associatedtype Scalar: TrainingScalar
    var windows: Int { get }
    var tokens: Int { get }
    /// The block's output y, [windows × tokens, E].
    var output: [Scalar] { get }
}

extension TrainableBlock {
    /// The block's output for `input`.
    public func output(_ input: [Scalar], windows: Int, tokens: Int) -> [Scalar] {
        forward(input, windows: windows, tokens: tokens).output
    }

    /// One training step's worth of work: the MSE of the output against `target` and its
    /// gradient for every parameter.
    public func lossAndGradients(_ input: [Scalar], target: [Scalar], windows: Int, tokens: Int)
        -> (loss: Double, gradients: BlockWeights<Scalar>) {
        let activations = forward(input, windows: windows, tokens: tokens)
        let (loss, dy) = DistillationLoss.meanSquaredError(activations.output, target)
        return (loss, backward(activations, outputGradient: dy).weights)
    }
}

/// A model family whose blocks layer-wise distillation can train: which tensors a block has,
/// and the block's forward and backward passes.
public protocol DistillableFamily: ModelFamily {
    /// The trainable tensors of one block of `config`: names inside the block and shapes, in
    /// the order of the flat parameter vector (`BlockSchema`).
    func trainableTensors(_ config: ModelConfig) -> [(name: String, shape: [Int])]
    /// The block computing with `weights` (whose schema is of this family).
    func trainableBlock<Scalar: TrainingScalar>(_ weights: BlockWeights<Scalar>, context: ComputeContext) -> any TrainableBlock<Scalar>
}

extension BlockWeights {
    /// The trainable block of the schema's family computing with these weights.
    public func block(context: ComputeContext) -> any TrainableBlock<Scalar> {
        schema.family.trainableBlock(self, context: context)
    }
}

/// The distillation loss.
public enum DistillationLoss {
    /// The mean over all elements of (y − target)², and its gradient 2(y − target)/count.
    public static func meanSquaredError<Scalar: TrainingScalar>(_ y: [Scalar], _ target: [Scalar]) -> (loss: Double, gradient: [Scalar]) {
        precondition(y.count == target.count && !y.isEmpty)
        var sum = 0.0
        var gradient = [Scalar](repeating: 0, count: y.count)
        let scale = 2 / Scalar(y.count)
        for i in 0..<y.count {
            let d = y[i] - target[i]
            sum += Double(d) * Double(d)
            gradient[i] = scale * d
        }
        return (sum / Double(y.count), gradient)
    }
}

/// Memory for one activation or gradient tensor, freed with its owner.
final class TrainingBuffer<S: TrainingScalar>: @unchecked Sendable {
    let p: UnsafeMutablePointer<S>
    let count: Int
    init(_ count: Int) {
        self.count = count
        p = .allocate(capacity: max(1, count))
        p.initialize(repeating: 0, count: max(1, count))
    }
    deinit { p.deallocate() }
    var array: [S] { Array(UnsafeBufferPointer(start: p, count: count)) }
}
