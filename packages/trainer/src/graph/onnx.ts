import { create, toBinary } from '@bufbuild/protobuf';
import {
  type AttributeProto,
  AttributeProto_AttributeType,
  AttributeProtoSchema,
  GraphProtoSchema,
  ModelProtoSchema,
  type NodeProto,
  NodeProtoSchema,
  OperatorSetIdProtoSchema,
  StringStringEntryProtoSchema,
  type TensorProto,
  TensorProto_DataType,
  TensorProtoSchema,
  type ValueInfoProto,
  ValueInfoProtoSchema,
} from 'onnx-buf';
import { type Dim, type Node, topoSort } from './graph.js';

export const OPSET = 17;
const IR_VERSION = 8n;

export interface OnnxGraphSpec {
  name: string;
  /** Graph outputs by name. */
  outputs: Record<string, Node>;
  /** 'initializer': params are baked into the file (serving); 'input': params are fed each run (training). */
  params: 'initializer' | 'input';
  /** Free-form metadata_props (model name, version, …). */
  metadata?: Record<string, string>;
  producerVersion?: string;
}

function attr(name: string, value: number | number[] | boolean): AttributeProto {
  if (Array.isArray(value))
    return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INTS, ints: value.map((v) => BigInt(v)) });
  return create(AttributeProtoSchema, { name, type: AttributeProto_AttributeType.INT, i: BigInt(Number(value)) });
}

/** A float32 or int32 tensor, stored as little-endian raw bytes. */
function rawTensor(name: string, data: Float32Array | Int32Array, dims: readonly number[]): TensorProto {
  return create(TensorProtoSchema, {
    name,
    dims: dims.map((d) => BigInt(d)),
    dataType: data instanceof Int32Array ? TensorProto_DataType.INT32 : TensorProto_DataType.FLOAT,
    rawData: new Uint8Array(data.buffer, data.byteOffset, data.byteLength).slice(),
  });
}

function int64Tensor(name: string, values: readonly number[], scalar = false): TensorProto {
  return create(TensorProtoSchema, {
    name,
    dims: scalar ? [] : [BigInt(values.length)],
    dataType: TensorProto_DataType.INT64,
    int64Data: values.map((v) => BigInt(v)),
  });
}

function valueInfo(name: string, dtype: Node['dtype'], shape: readonly Dim[]): ValueInfoProto {
  return create(ValueInfoProtoSchema, {
    name,
    type: {
      value: {
        case: 'tensorType',
        value: {
          elemType: dtype === 'int32' ? TensorProto_DataType.INT32 : TensorProto_DataType.FLOAT,
          shape: {
            dim: shape.map((d) => ({
              value: typeof d === 'number' ? { case: 'dimValue' as const, value: BigInt(d) } : { case: 'dimParam' as const, value: d },
            })),
          },
        },
      },
    },
  });
}

/** Emits a graph as an ONNX model (opset 17). */
export function toOnnxModel(spec: OnnxGraphSpec): Uint8Array {
  const outputs = Object.entries(spec.outputs);
  const order = topoSort(outputs.map(([, n]) => n));
  const nodes: NodeProto[] = [];
  const initializers: TensorProto[] = [];
  const inputs: ValueInfoProto[] = [];
  const names = new Map<number, string>();
  let counter = 0;
  const fresh = (hint: string) => `${hint}_${counter++}`;
  const emit = (opType: string, ins: string[], attributes: AttributeProto[] = [], out = fresh(opType.toLowerCase())) => {
    nodes.push(create(NodeProtoSchema, { opType, input: ins, output: [out], name: out, attribute: attributes }));
    return out;
  };
  const constInt64 = (values: readonly number[], scalar = false) => {
    const name = fresh('const');
    initializers.push(int64Tensor(name, values, scalar));
    return name;
  };
  const constFloat = (value: number) => {
    const name = fresh('const');
    initializers.push(rawTensor(name, Float32Array.of(value), []));
    return name;
  };

  for (const n of order) {
    const inName = (k: number) => names.get(n.inputs[k]!.id)!;
    let name: string;
    switch (n.op) {
      case 'input':
        name = n.name!;
        inputs.push(valueInfo(name, n.dtype, n.shape));
        break;
      case 'param':
        name = n.name!;
        if (spec.params === 'initializer') initializers.push(rawTensor(name, n.data!, n.shape as number[]));
        else inputs.push(valueInfo(name, 'float32', n.shape));
        break;
      case 'constant':
        name = fresh('const');
        initializers.push(rawTensor(name, n.data!, n.shape as number[]));
        break;
      case 'gather':
        name = emit('Gather', [inName(0), inName(1)], [attr('axis', 0)]);
        break;
      case 'column':
        name = emit('Gather', [inName(0), constInt64([n.attrs.index!], true)], [attr('axis', 1)]);
        break;
      case 'selectColumns':
        name = emit('Gather', [inName(0), constInt64(n.attrs.indices!)], [attr('axis', 1)]);
        break;
      case 'matmul':
        name = emit('MatMul', [inName(0), inName(1)]);
        break;
      case 'transpose':
        name = emit('Transpose', [inName(0)], [attr('perm', [...n.attrs.perm!])]);
        break;
      case 'add':
      case 'sub':
      case 'mul':
      case 'div':
        name = emit(n.op[0]!.toUpperCase() + n.op.slice(1), [inName(0), inName(1)]);
        break;
      case 'neg':
      case 'relu':
      case 'sigmoid':
      case 'sqrt':
      case 'exp':
        name = emit(n.op === 'neg' ? 'Neg' : n.op[0]!.toUpperCase() + n.op.slice(1), [inName(0)]);
        break;
      case 'reluGrad': {
        const positive = emit('Greater', [inName(1), constFloat(0)]);
        name = emit('Where', [positive, inName(0), constFloat(0)]);
        break;
      }
      case 'reduceSum':
        name = emit('ReduceSum', [inName(0), constInt64(n.attrs.axes!)], [attr('keepdims', n.attrs.keepdims!)]);
        break;
      case 'expand':
        name = emit('Expand', [inName(0), emit('Shape', [inName(1)])]);
        break;
      case 'unsqueeze':
        name = emit('Unsqueeze', [inName(0), constInt64(n.attrs.axes!)]);
        break;
      case 'concat':
        name = emit(
          'Concat',
          n.inputs.map((_, k) => inName(k)),
          [attr('axis', n.attrs.axis!)],
        );
        break;
      case 'slice':
        name = emit('Slice', [inName(0), constInt64([n.attrs.start!]), constInt64([n.attrs.end!]), constInt64([n.attrs.axis!])]);
        break;
      case 'reshape':
        name = emit('Reshape', [inName(0), constInt64(n.attrs.shape!.map((d) => (typeof d === 'number' ? d : -1)))]);
        break;
      case 'logSoftmax':
        name = emit('LogSoftmax', [inName(0)], [attr('axis', -1)]);
        break;
      case 'bceWithLogits': {
        // max(z, 0) - z*y + log(1 + exp(-|z|))
        const z = inName(0);
        const softplusTail = emit('Log', [emit('Add', [emit('Exp', [emit('Neg', [emit('Abs', [z])])]), constFloat(1)])]);
        name = emit('Add', [emit('Sub', [emit('Relu', [z]), emit('Mul', [z, inName(1)])]), softplusTail]);
        break;
      }
    }
    names.set(n.id, name);
  }

  const graphOutputs: ValueInfoProto[] = [];
  for (const [outName, n] of outputs) {
    emit('Identity', [names.get(n.id)!], [], outName);
    graphOutputs.push(valueInfo(outName, n.dtype, n.shape));
  }
  const model = create(ModelProtoSchema, {
    irVersion: IR_VERSION,
    producerName: 'recsys-trainer',
    producerVersion: spec.producerVersion ?? '0.1.0',
    opsetImport: [create(OperatorSetIdProtoSchema, { domain: '', version: BigInt(OPSET) })],
    graph: create(GraphProtoSchema, { name: spec.name, node: nodes, initializer: initializers, input: inputs, output: graphOutputs }),
    metadataProps: Object.entries(spec.metadata ?? {}).map(([key, value]) => create(StringStringEntryProtoSchema, { key, value })),
  });
  return toBinary(ModelProtoSchema, model);
}
