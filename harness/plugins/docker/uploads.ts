// docker.Container's `uploads`, as kreuzwerker's docker_container v4.5.0 writes them
// (internal/provider/resource_docker_container_funcs.go resourceDockerContainerCreate, the `upload` block):
// after the container is created and before it starts, each file goes in as a one-entry tar archive
// extracted at "/" (CopyToContainer with default options: owned by the container's root). Its mode is
// `permissions` (octal) when set, 0744 when `executable`, else 0644. Exactly one of content, contentBase64
// and source (a file on the machine running the provider) gives the bytes.
import fs from 'node:fs';
import type { DeclaredInputs } from './declared-inputs';

export interface PlannedUpload {
  file: string;
  mode: number;
  content: Buffer;
}

/** One upload's inputs, checked as the provider checks them at create. */
export function planUpload(u: DeclaredInputs): PlannedUpload {
  const file = u.get<string>('file');
  const content = u.get<string>('content');
  const contentBase64 = u.get<string>('contentBase64');
  const source = u.get<string>('source');
  const permissions = u.get<string>('permissions');
  const executable = u.get<boolean>('executable') ?? false;
  u.get<string>('sourceHash'); // only a trigger: a change replaces the container
  u.done();
  if (!file) throw new Error(`${u.where} has no file`);
  const given = [content, contentBase64, source].filter((v) => v !== undefined && v !== '').length;
  if (given === 0) throw new Error("error with upload content: one of 'content', 'content_base64', or 'source' must be set");
  if (given > 1) throw new Error("error with upload content: only one of 'content', 'content_base64', or 'source' can be set");
  let mode = executable ? 0o744 : 0o644;
  if (permissions !== undefined && permissions !== '') {
    if (!/^[0-7]+$/.test(permissions)) throw new Error(`Error parsing permission: ${permissions} is not an octal mode`);
    mode = parseInt(permissions, 8);
  }
  const bytes = content ? Buffer.from(content) : contentBase64 ? Buffer.from(contentBase64, 'base64') : fs.readFileSync(source!);
  return { file, mode, content: bytes };
}

/** A ustar archive of one regular file, uid and gid 0, as Go's archive/tar writes the provider's header. */
export function tarOf({ file, mode, content }: PlannedUpload): Buffer {
  const header = Buffer.alloc(512);
  const name = file.replace(/^\/+/, '');
  if (Buffer.byteLength(name) > 100) throw new Error(`upload file ${file}: a path of at most 100 bytes`);
  const octal = (value: number, width: number) => value.toString(8).padStart(width - 1, '0') + '\0';
  header.write(name, 0);
  header.write(octal(mode, 8), 100);
  header.write(octal(0, 8), 108);
  header.write(octal(0, 8), 116);
  header.write(octal(content.length, 12), 124);
  header.write(octal(Math.floor(Date.now() / 1000), 12), 136);
  header.write(' '.repeat(8), 148);
  header.write('0', 156);
  header.write('ustar\0', 257);
  header.write('00', 263);
  let sum = 0;
  for (const byte of header) sum += byte;
  header.write(octal(sum, 7) + ' ', 148);
  const padding = Buffer.alloc((512 - (content.length % 512)) % 512);
  return Buffer.concat([header, content, padding, Buffer.alloc(1024)]);
}
