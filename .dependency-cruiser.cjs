// The dependency directions we keep (pnpm lint runs this): services -> stage layer (@recsys/stage) -> service-kit ->
// contracts; services -> model runtime (@recsys/serving) -> model format <- trainer. Production code only: specs may reach for
// the test kit (which trains models) and start other services through it.
const PRODUCTION = '\\.spec\\.ts$';

/** @type {import('dependency-cruiser').IConfiguration} */
module.exports = {
  forbidden: [
    {
      name: 'not-to-unresolvable',
      comment: 'An import that does not resolve (a dependency missing from package.json, a typo) is a broken edge.',
      severity: 'error',
      from: { pathNot: PRODUCTION },
      to: { couldNotResolve: true },
    },
    {
      name: 'no-server-ships-the-trainer',
      comment:
        'Services (the all-in-one process too) and the model runtime read models through @recsys/model-format; the trainer (autodiff, CLI) stays offline.',
      severity: 'error',
      from: { path: '^(services/[^/]+|packages/all-in-one|packages/serving|packages/model-format)/src/', pathNot: PRODUCTION },
      to: { path: '^packages/trainer/' },
    },
    {
      name: 'no-service-imports-another',
      comment: 'Services talk over their contracts; tests start them through the testing package.',
      severity: 'error',
      from: { path: '^services/([^/]+)/src/', pathNot: PRODUCTION },
      to: { path: '^services/([^/]+)/', pathNot: '^services/$1/' },
    },
    {
      name: 'no-transport-in-the-model-runtime-trainer-or-format',
      comment:
        'The model runtime (@recsys/serving), the trainer and the model format know no transport: no service-kit, stage layer, gRPC or Nest.',
      severity: 'error',
      from: { path: '^packages/(serving|trainer|model-format)/src/', pathNot: PRODUCTION },
      to: { path: ['^packages/(service-kit|stage|offline|pipeline)/', '^services/', 'node_modules/(@grpc|@nestjs)/'] },
    },
    {
      name: 'trainer-and-format-read-no-contracts',
      comment: 'The trainer and the model format are independent of the serving contracts.',
      severity: 'error',
      from: { path: '^packages/(trainer|model-format)/src/', pathNot: PRODUCTION },
      to: { path: '^packages/contracts/' },
    },
    {
      name: 'service-kit-knows-no-service',
      comment: 'service-kit is below every stage: it depends on the contracts only.',
      severity: 'error',
      from: { path: '^packages/service-kit/src/', pathNot: PRODUCTION },
      to: { path: ['^services/', '^packages/(serving|stage|trainer|model-format|offline|pipeline|vector-index|testing)/'] },
    },
    {
      name: 'model-runtime-is-no-service',
      comment: 'The model runtime serves every stage and depends on none of them, nor on the offline tools.',
      severity: 'error',
      from: { path: '^packages/(serving|model-format|vector-index)/src/', pathNot: PRODUCTION },
      to: { path: ['^services/', '^packages/(offline|pipeline|testing)/'] },
    },
  ],
  options: {
    doNotFollow: { path: 'node_modules' },
    exclude: { path: '(^|/)dist/|\\.d\\.ts$' },
    tsPreCompilationDeps: true,
    tsConfig: { fileName: 'tsconfig.depcruise.json' },
    combinedDependencies: true,
    enhancedResolveOptions: { exportsFields: ['exports'], conditionNames: ['import', 'require', 'node', 'default'] },
  },
};
