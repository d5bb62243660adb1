// docker.Network and docker.Volume: made with `docker <kind> create`, replaced on any change (every argument
// is ForceNew in kreuzwerker's docker_network and docker_volume), removed on delete.
import type { Props, ResourceHandlers } from '../provider-server';
import { docker, inspect, type Engine } from './cli';
import { checkInputs, diffInputs, isGone } from './checked';
import { INPUT_RULES, NETWORK, VOLUME } from './inputs';
import { autoName, planNetwork, planVolume } from './plans';

function namedObjectHandlers(
  kind: 'network' | 'volume',
  type: typeof NETWORK | typeof VOLUME,
  plan: (name: string, inputs: Props) => { name: string; createArgs: string[] },
  engine: () => Engine | undefined,
): ResourceHandlers {
  const rules = INPUT_RULES[type];
  return {
    check(news, olds, name) {
      // The bridge auto-names an unnamed object once and keeps that name.
      const inputs = { ...news, name: news.name ?? olds.name ?? autoName(name) };
      return checkInputs(`docker:${kind}`, rules, inputs, (values) => plan(name, values));
    },
    diff: (_id, olds, news) => diffInputs(rules, olds, news),
    async create(news) {
      const { createArgs } = plan(String(news.name), news);
      // A network's id is the engine's; a volume's is its name (kreuzwerker sets the id to what create returns).
      const id = (await docker(createArgs, { engine: engine() })).trim();
      return { id, outs: { ...news } };
    },
    async read(id, props, inputs) {
      return (await inspect(kind, id, engine())) ? { id, props, inputs } : undefined;
    },
    update() {
      return Promise.reject(new Error(`docker:${kind}: every input replaces it, so there is no update`));
    },
    async delete(id) {
      try {
        await docker([kind, 'rm', id], { engine: engine() });
      } catch (error) {
        if (!isGone(error)) throw error;
      }
    },
  };
}

export const networkHandlers = (engine: () => Engine | undefined) => namedObjectHandlers('network', NETWORK, planNetwork, engine);
export const volumeHandlers = (engine: () => Engine | undefined) => namedObjectHandlers('volume', VOLUME, planVolume, engine);
