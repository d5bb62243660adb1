// Serves a resource provider plugin over gRPC, as the Pulumi engine expects of `pulumi-resource-<name>`: it
// prints its port on stdout (and nothing else there), then answers the ResourceProvider service of
// pulumi/pulumi proto/pulumi/provider.proto, whose generated code @pulumi/pulumi ships.
// This is the frame of the stand-ins for the providers that cannot be built here (docker, command). It is not
// @pulumi/pulumi/provider's main(): at 3.248 that answers CheckConfig and DiffConfig as unimplemented and drops
// Configure's request, so a provider's own config (docker's `host`, `sshOpts`) would never reach it.
import * as grpc from '@grpc/grpc-js';
import * as structproto from 'google-protobuf/google/protobuf/struct_pb';
import * as emptyproto from 'google-protobuf/google/protobuf/empty_pb';
import * as anyproto from 'google-protobuf/google/protobuf/any_pb';
import * as provproto from '@pulumi/pulumi/proto/provider_pb';
import * as provrpc from '@pulumi/pulumi/proto/provider_grpc_pb';
import * as plugproto from '@pulumi/pulumi/proto/plugin_pb';
import * as statusproto from '@pulumi/pulumi/proto/status_pb';

export type Props = Record<string, unknown>;

/** The engine's placeholder for a value not known yet (a preview): pulumi/pulumi sdk/go/common/resource/plugin/rpc.go, UnknownStringValue. */
export const UNKNOWN = '04da6b54-80e4-46f7-96ec-b56ff0331ba9';

export function isUnknown(value: unknown): boolean {
  if (value === UNKNOWN) return true;
  if (Array.isArray(value)) return value.some(isUnknown);
  if (value !== null && typeof value === 'object') return Object.values(value).some(isUnknown);
  return false;
}

export interface CheckFailure {
  property: string;
  reason: string;
}

export interface DiffResult {
  /** Top-level input names that differ (the engine shows them; empty = no change). */
  changed: string[];
  /** The subset of `changed` that replaces the resource. */
  replaces: string[];
  deleteBeforeReplace?: boolean;
}

export interface ResourceHandlers {
  /**
   * Validates and normalises inputs (defaults filled in); an input it does not know is a failure. `olds` are
   * the inputs Check returned last time, empty at a create and at a replacement (the engine checks again
   * without them, so an auto-name is drawn anew: pkg/resource/deploy/step_generator.go); `name` is the
   * resource's name, for auto-naming.
   */
  check(
    news: Props,
    olds: Props,
    name: string,
  ): Promise<{ inputs: Props; failures: CheckFailure[] }> | { inputs: Props; failures: CheckFailure[] };
  /** `olds` are the outputs in the state (create's or the last update's or read's), `news` Check's inputs. */
  diff(id: string, olds: Props, news: Props): Promise<DiffResult> | DiffResult;
  create(news: Props, timeoutSeconds: number, urn: string): Promise<{ id: string; outs: Props }>;
  /** Returns `undefined` when the object is gone (the engine then drops it from the state). */
  read(id: string, props: Props, inputs: Props): Promise<{ id: string; props: Props; inputs: Props } | undefined>;
  update(id: string, olds: Props, news: Props, timeoutSeconds: number): Promise<Props>;
  delete(id: string, props: Props, timeoutSeconds: number): Promise<void>;
}

export interface StandInProvider {
  /** The package name, for messages. */
  name: string;
  version: string;
  checkConfig(news: Props): { inputs: Props; failures: CheckFailure[] };
  diffConfig(olds: Props, news: Props): DiffResult;
  configure(args: Props): void;
  /** By type token, e.g. `docker:index/container:Container`. */
  resources: Record<string, ResourceHandlers>;
}

/**
 * A create or update that made the object but could not bring it to life (a container that never became
 * healthy): the engine keeps it in the state with the reasons, as pulumi/pulumi's ErrorResourceInitFailed.
 */
export class InitializationFailed extends Error {
  constructor(
    readonly id: string,
    readonly properties: Props,
    readonly reasons: string[],
  ) {
    super(reasons.join('; '));
  }
}

/** The type token of a URN: `urn:pulumi:<stack>::<project>::<parent types$>type::<name>`. */
export function typeOfUrn(urn: string): string {
  const qualified = urn.split('::')[2] ?? '';
  return qualified.split('$').pop() ?? '';
}

export function nameOfUrn(urn: string): string {
  return urn.split('::').slice(3).join('::');
}

type Callback<T> = grpc.sendUnaryData<T>;

function toStruct(props: Props): structproto.Struct {
  return structproto.Struct.fromJavaScript(props as Record<string, structproto.JavaScriptValue>);
}

function fromStruct(struct: structproto.Struct | undefined): Props {
  return struct ? struct.toJavaScript() : {};
}

function checkResponse(result: { inputs: Props; failures: CheckFailure[] }): provproto.CheckResponse {
  const response = new provproto.CheckResponse();
  response.setInputs(toStruct(result.inputs));
  response.setFailuresList(
    result.failures.map((f) => {
      const failure = new provproto.CheckFailure();
      failure.setProperty(f.property);
      failure.setReason(f.reason);
      return failure;
    }),
  );
  return response;
}

function diffResponse(result: DiffResult): provproto.DiffResponse {
  const response = new provproto.DiffResponse();
  response.setChanges(
    result.changed.length > 0 ? provproto.DiffResponse.DiffChanges.DIFF_SOME : provproto.DiffResponse.DiffChanges.DIFF_NONE,
  );
  response.setDiffsList(result.changed);
  response.setReplacesList(result.replaces);
  response.setDeletebeforereplace(result.deleteBeforeReplace === true);
  return response;
}

function errorStatus(error: unknown): Partial<grpc.StatusObject> {
  const message = error instanceof Error ? error.message : String(error);
  const metadata = new grpc.Metadata();
  if (error instanceof InitializationFailed) {
    const detail = new provproto.ErrorResourceInitFailed();
    detail.setId(error.id);
    detail.setProperties(toStruct(error.properties));
    detail.setReasonsList(error.reasons);
    const any = new anyproto.Any();
    any.pack(detail.serializeBinary(), 'pulumirpc.ErrorResourceInitFailed');
    const status = new statusproto.Status();
    status.setCode(grpc.status.UNKNOWN);
    status.setMessage(message);
    status.addDetails(any);
    metadata.add('grpc-status-details-bin', Buffer.from(status.serializeBinary()));
  }
  return { code: grpc.status.UNKNOWN, details: message, metadata };
}

function handlersFor(provider: StandInProvider, urn: string): ResourceHandlers {
  const type = typeOfUrn(urn);
  const handlers = provider.resources[type];
  if (!handlers) {
    throw new Error(
      `the ${provider.name} stand-in provider does not implement ${type} (${urn}); it implements ${Object.keys(provider.resources).join(', ')}`,
    );
  }
  return handlers;
}

/** Runs `work` and answers the call with its value, or with its error as a gRPC status. */
function answer<T>(callback: Callback<T>, work: () => T | Promise<T>): void {
  Promise.resolve()
    .then(work)
    .then(
      (value) => callback(null, value),
      (error: unknown) => {
        if (!(error instanceof InitializationFailed)) console.error(error instanceof Error ? error.stack : error);
        callback(errorStatus(error));
      },
    );
}

// Methods left out (handshake, invoke, construct, ...) are answered UNIMPLEMENTED by grpc-js, and the engine
// falls back where the protocol allows it.
function service(provider: StandInProvider): Partial<provrpc.IResourceProviderServer> {
  return {
    getPluginInfo: (_call, callback) =>
      answer(callback, () => {
        const info = new plugproto.PluginInfo();
        info.setVersion(provider.version);
        return info;
      }),
    getSchema: (_call, callback) =>
      answer(callback, () => {
        const response = new provproto.GetSchemaResponse();
        response.setSchema('{}');
        return response;
      }),
    checkConfig: (call, callback) => answer(callback, () => checkResponse(provider.checkConfig(fromStruct(call.request.getNews())))),
    diffConfig: (call, callback) =>
      answer(callback, () => diffResponse(provider.diffConfig(fromStruct(call.request.getOlds()), fromStruct(call.request.getNews())))),
    configure: (call, callback) =>
      answer(callback, () => {
        provider.configure(fromStruct(call.request.getArgs()));
        const response = new provproto.ConfigureResponse();
        // Secrets arrive as plain values and unknowns never reach create: the engine does both for a provider
        // that neither accepts secrets nor supports previews (pkg/resource/plugin/provider_plugin.go).
        response.setAcceptsecrets(false);
        response.setSupportspreview(false);
        response.setAcceptresources(false);
        response.setAcceptoutputs(false);
        return response;
      }),
    check: (call, callback) =>
      answer(callback, async () =>
        checkResponse(
          await handlersFor(provider, call.request.getUrn()).check(
            fromStruct(call.request.getNews()),
            fromStruct(call.request.getOlds()),
            nameOfUrn(call.request.getUrn()),
          ),
        ),
      ),
    diff: (call, callback) =>
      answer(callback, async () =>
        diffResponse(
          await handlersFor(provider, call.request.getUrn()).diff(
            call.request.getId(),
            fromStruct(call.request.getOlds()),
            fromStruct(call.request.getNews()),
          ),
        ),
      ),
    create: (call, callback) =>
      answer(callback, async () => {
        const request = call.request;
        const result = await handlersFor(provider, request.getUrn()).create(
          fromStruct(request.getProperties()),
          request.getTimeout(),
          request.getUrn(),
        );
        const response = new provproto.CreateResponse();
        response.setId(result.id);
        response.setProperties(toStruct(result.outs));
        return response;
      }),
    read: (call, callback) =>
      answer(callback, async () => {
        const request = call.request;
        const result = await handlersFor(provider, request.getUrn()).read(
          request.getId(),
          fromStruct(request.getProperties()),
          fromStruct(request.getInputs()),
        );
        const response = new provproto.ReadResponse();
        response.setId(result?.id ?? '');
        if (result) {
          response.setProperties(toStruct(result.props));
          response.setInputs(toStruct(result.inputs));
        }
        return response;
      }),
    update: (call, callback) =>
      answer(callback, async () => {
        const request = call.request;
        const outs = await handlersFor(provider, request.getUrn()).update(
          request.getId(),
          fromStruct(request.getOlds()),
          fromStruct(request.getNews()),
          request.getTimeout(),
        );
        const response = new provproto.UpdateResponse();
        response.setProperties(toStruct(outs));
        return response;
      }),
    delete: (call, callback) =>
      answer(callback, async () => {
        const request = call.request;
        await handlersFor(provider, request.getUrn()).delete(request.getId(), fromStruct(request.getProperties()), request.getTimeout());
        return new emptyproto.Empty();
      }),
    cancel: (_call, callback) => callback(null, new emptyproto.Empty()),
    attach: (_call, callback) => callback(null, new emptyproto.Empty()),
  };
}

/** Starts the plugin: binds a loopback port, prints it, and serves until the engine kills the process. */
export async function serve(provider: StandInProvider): Promise<void> {
  const server = new grpc.Server({ 'grpc.max_receive_message_length': 400 * 1024 * 1024 });
  server.addService(provrpc.ResourceProviderService, service(provider) as grpc.UntypedServiceImplementation);
  const port = await new Promise<number>((resolve, reject) =>
    server.bindAsync('127.0.0.1:0', grpc.ServerCredentials.createInsecure(), (error, bound) => (error ? reject(error) : resolve(bound))),
  );
  process.stdout.write(`${port}\n`);
}
