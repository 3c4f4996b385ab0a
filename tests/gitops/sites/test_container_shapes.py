"""Pod templates deeper in a custom resource, found by shape through mappings (sites/container.py):
KEDA's ScaledJob (spec.jobTargetRef.template), Kubeflow's TFJob replica specs; a list of templates (an
Argo Experiment's, an AnalysisTemplate's jobs) is not the workload. Shapes of KEDA's ScaledJob docs,
Kubeflow's TFJob examples and argo-rollouts' examples/experiment-with-analysis.yaml."""

from __future__ import annotations

import pytest

from buildctl.errors import ConfigError
from buildctl.gitops.edits import edit_file

R = "127.0.0.1:5000/team/consumer"

SCALED_JOB = """\
apiVersion: keda.sh/v1alpha1
kind: ScaledJob
metadata:
  name: rabbitmq-consumer
  namespace: default
spec:
  jobTargetRef:
    template:
      spec:
        containers:
        - name: rabbitmq-client
          image: 127.0.0.1:5000/team/consumer:1.0   # the consumer
          imagePullPolicy: Always
          command: ["receive", "amqp://rabbitmq.default.svc.cluster.local:5672", "job"]
        restartPolicy: Never
    backoffLimit: 4
  pollingInterval: 10
  maxReplicaCount: 30
  triggers:
  - type: rabbitmq
    metadata:
      queueName: hello
"""
TF_JOB = """\
apiVersion: kubeflow.org/v1
kind: TFJob
metadata:
  name: mnist
spec:
  tfReplicaSpecs:
    Worker:
      replicas: 2
      restartPolicy: OnFailure
      template:
        spec:
          containers:
          - name: tensorflow
            image: 127.0.0.1:5000/team/consumer:1.0
"""
EXPERIMENT = """\
apiVersion: argoproj.io/v1alpha1
kind: Experiment
metadata:
  name: experiment-with-analysis
spec:
  templates:
  - name: purple
    template:
      spec:
        containers:
        - name: rollouts-demo
          image: 127.0.0.1:5000/team/consumer:1.0
"""


@pytest.mark.parametrize(("text", "where"), [(SCALED_JOB, "ScaledJob/rabbitmq-consumer container rabbitmq-client"),
                                             (TF_JOB, "TFJob/mnist container tensorflow")])
def test_a_pod_template_under_mappings_is_edited(loader, text, where):
    after, edits, _ = edit_file(text, path="k8s/job.yaml", repository=R, new_reference=f"{R}:8.10")
    assert after == text.replace(f"{R}:1.0", f"{R}:8.10")
    assert edits == (f"{where}: {R}:1.0 -> {R}:8.10",)


def test_a_list_of_templates_is_not_the_workload():
    with pytest.raises(ConfigError) as err:
        edit_file(EXPERIMENT, path="k8s/exp.yaml", repository=R, new_reference=f"{R}:8.10")
    assert str(err.value).startswith(f"k8s/exp.yaml:12: no container image of {R} that buildctl edits: Experiment/"
                                     "experiment-with-analysis has it at spec.templates[0].template.spec.containers[0]."
                                     "image, outside a pod template")


# A custom resource may be named like a core kind: the apiVersion's group says which it is.
VOLCANO_JOB = """\
apiVersion: batch.volcano.sh/v1alpha1
kind: Job
metadata: {name: train}
spec:
  tasks:
  - name: worker
    template:
      spec:
        containers:
        - name: a
          image: 127.0.0.1:5000/team/consumer:1.0
"""
TEMPLATED_JOB = """\
apiVersion: example.com/v1
kind: Job
metadata: {name: nightly}
spec:
  jobTemplate:
    spec:
      template:
        spec:
          containers: [{name: a, image: "127.0.0.1:5000/team/consumer:1.0"}]
"""


def test_a_custom_job_is_not_refused_as_a_batch_job():
    with pytest.raises(ConfigError) as err:
        edit_file(VOLCANO_JOB, path="k8s/vcjob.yaml", repository=R, new_reference=f"{R}:8.10")
    assert str(err.value).startswith(f"k8s/vcjob.yaml:11: no container image of {R} that buildctl edits: Job/train "
                                     "has it at spec.tasks[0].template.spec.containers[0].image, outside a pod template")


@pytest.mark.parametrize(("api", "edits"), [("example.com/v1", 1), ("batch/v1", 0), ("batch.example.com/v1", 1)])
def test_a_custom_job_s_pod_template_is_found_by_shape(api, edits):
    text = TEMPLATED_JOB.replace("example.com/v1", api)
    if not edits:  # batch/v1: a Job's pod spec is at spec.template.spec only
        with pytest.raises(ConfigError, match="but a Job runs the containers under spec.template.spec only"):
            edit_file(text, path="k8s/job.yaml", repository=R, new_reference=f"{R}:8.10")
        return
    after, done, _ = edit_file(text, path="k8s/job.yaml", repository=R, new_reference=f"{R}:8.10")
    assert after == text.replace(f"{R}:1.0", f"{R}:8.10") and len(done) == edits
