// docker.Container, as kreuzwerker's docker_container v4.5.0 (internal/provider/resource_docker_container_funcs.go):
// create, upload files, start and wait for healthy; update in place what resourceDockerContainerUpdate updates; a refresh of
// a stopped container sets mustRun false and the next update starts the same container; delete stops with
// destroyGraceSeconds, then removes.
import { InitializationFailed, type Props, type ResourceHandlers } from '../provider-server';
import { docker, inspect, type Engine } from './cli';
import { checkInputs, diffInputs, isGone } from './checked';
import { CONTAINER, INPUT_RULES } from './inputs';
import { autoName, planContainer, updateArgs, type ContainerPlan } from './plans';
import { tarOf } from './uploads';

const rules = INPUT_RULES[CONTAINER];

/** resourceDockerContainerCreate's wait: the container's health check reports healthy within the timeout. */
async function waitHealthy(id: string, plan: ContainerPlan, engine: Engine | undefined): Promise<void> {
  const seconds = plan.waitHealthySeconds!;
  const deadline = Date.now() + seconds * 1000;
  for (;;) {
    const state = (await inspect('container', id, engine))?.State;
    if (!state?.Health) {
      throw new Error(`container ${plan.name} sets wait but has no health check: remove wait or add a healthcheck`);
    }
    if (state.Health.Status === 'healthy') return;
    if (Date.now() > deadline) throw new Error(`container ${plan.name} failed to be in healthy state within ${seconds} s`);
    await new Promise((resolve) => setTimeout(resolve, 1000));
  }
}

export function containerHandlers(engine: () => Engine | undefined): ResourceHandlers {
  return {
    check(news, olds, name) {
      const inputs = { ...news, name: news.name ?? olds.name ?? autoName(name), mustRun: news.mustRun ?? true };
      return checkInputs('docker:Container', rules, inputs, (values) => planContainer(name, values));
    },
    diff: (_id, olds, news) => diffInputs(rules, olds, news),
    async create(news) {
      const plan = planContainer(String(news.name), news);
      const id = (await docker(plan.createArgs, { engine: engine() })).trim();
      try {
        for (const network of plan.moreNetworks) {
          await docker(['network', 'connect', ...network.aliases.flatMap((a) => ['--alias', a]), network.name, id], { engine: engine() });
        }
        for (const upload of plan.uploads) await docker(['cp', '-', `${id}:/`], { engine: engine(), input: tarOf(upload) });
        if (plan.start) {
          await docker(['start', id], { engine: engine() });
          if (plan.waitHealthySeconds !== undefined) await waitHealthy(id, plan, engine());
        }
      } catch (error) {
        // The id is set before the start and the wait: the container stays, in the state, with the error.
        throw new InitializationFailed(id, { ...news }, [error instanceof Error ? error.message : String(error)]);
      }
      return { id, outs: { ...news } };
    },
    async read(id, props, inputs) {
      const found = await inspect('container', id, engine());
      if (!found) return undefined;
      if (found.State.Running) return { id, props, inputs };
      // Stopped: must_run false in the state, so the next update sees a change and starts it.
      return { id, props: { ...props, mustRun: false }, inputs: { ...inputs, mustRun: false } };
    },
    async update(id, olds, news) {
      if (olds.mustRun === false && news.mustRun !== false && news.start !== false) {
        await docker(['start', id], { engine: engine() });
      }
      const { changed } = diffInputs(rules, olds, news);
      if (changed.some((k) => rules[k].effect === 'update')) await docker(['update', ...updateArgs(news), id], { engine: engine() });
      return { ...news };
    },
    async delete(id, props: Props) {
      const grace = typeof props.destroyGraceSeconds === 'number' ? props.destroyGraceSeconds : 0;
      try {
        await docker(['stop', '-t', String(grace), id], { engine: engine(), timeoutMs: (grace + 60) * 1000 });
        await docker(['rm', '-f', ...(props.removeVolumes === false ? [] : ['-v']), id], { engine: engine() });
      } catch (error) {
        if (!isGone(error)) throw error;
      }
    },
  };
}
