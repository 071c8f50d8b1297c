// `make synth`: the Backline stack from a deployment config, checked by cdk-nag, written to
// cdk.out/. BACKLINE_DEPLOY_CONFIG names the config (default: the example).
import { App, Aspects } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import { resolve } from 'node:path';
import { loadDeployment } from '../lib/deployment.ts';
import { BacklineStack, CONTEXT } from '../lib/stack.ts';

const configPath = resolve(process.env.BACKLINE_DEPLOY_CONFIG ?? resolve(import.meta.dirname, '../backline.example.toml'));
const deployment = loadDeployment(configPath);
const app = new App({
  outdir: process.env.CDK_OUTDIR ?? resolve(import.meta.dirname, '../cdk.out'),
  // Offline synth (make synth, tests) skips building the functions; `cdk deploy` builds them.
  context: { ...CONTEXT, ...(process.env.BACKLINE_SKIP_BUNDLING ? { 'aws:cdk:bundling-stacks': [] } : {}) },
});
new BacklineStack(app, deployment.infra.stack_name, {
  deployment,
  env: { account: process.env.CDK_DEFAULT_ACCOUNT, region: process.env.CDK_DEFAULT_REGION },
});
Aspects.of(app).add(new AwsSolutionsChecks({ verbose: true }));
app.synth();
