/* Unit tests for kubeconfig.c over the files in test/fixtures/kube/. */
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <setjmp.h>
#include <stdlib.h>
#include <string.h>
#include <cmocka.h>

#include "config.h"
#include "kubeconfig.h"

#define FIX	"test/fixtures/kube/"

static char	 err[512];

static struct kubeconfig *
load(const char *file, const char *context, int allow_insecure)
{
	err[0] = '\0';
	return kubeconfig_load_file(file, context, allow_insecure, err,
	    sizeof(err));
}

static void
expect_refused(const char *file, const char *context, int allow_insecure,
    const char *fragment)
{
	struct kubeconfig	*kc = load(file, context, allow_insecure);

	if (kc != NULL) {
		kubeconfig_free(kc);
		fail_msg("%s loaded, expected: %s", file, fragment);
	}
	if (strstr(err, fragment) == NULL)
		fail_msg("error \"%s\" lacks \"%s\"", err, fragment);
}

static void
test_named_context_token_relative_ca(void **state)
{
	struct kubeconfig	*kc = load(FIX "multi.yaml", "prod", 0);

	(void)state;
	if (kc == NULL)
		fail_msg("%s", err);
	assert_string_equal(kc->server, "https://prod.example.com:6443");
	/* Relative to the kubeconfig's directory, not the process's. */
	assert_string_equal(kc->ca_file, FIX "ca.crt");
	assert_null(kc->ca_data);
	assert_string_equal(kc->token, "inline-token-abc");
	assert_string_equal(kc->namespace, "web");
	assert_false(kc->insecure);
	kubeconfig_free(kc);
}

static void
test_current_context_token_file_ca_data(void **state)
{
	struct kubeconfig	*kc = load(FIX "multi.yaml", NULL, 0);

	(void)state;
	if (kc == NULL)
		fail_msg("%s", err);
	assert_string_equal(kc->server, "https://staging.example.com");
	assert_string_equal(kc->token, "file-token-123");
	assert_non_null(kc->ca_data);
	assert_int_equal(kc->ca_len, strlen("-----BEGIN CERTIFICATE-----\n"
	    "fake\n-----END CERTIFICATE-----\n"));
	assert_memory_equal(kc->ca_data, "-----BEGIN CERTIFICATE-----\nfake\n",
	    33);
	assert_null(kc->namespace);
	kubeconfig_free(kc);
}

static void
test_basic_auth_and_insecure(void **state)
{
	struct kubeconfig	*kc;

	(void)state;
	expect_refused(FIX "multi.yaml", "lab", 0, "allow_insecure: true");
	kc = load(FIX "multi.yaml", "lab", 1);
	if (kc == NULL)
		fail_msg("%s", err);
	assert_true(kc->insecure);
	assert_string_equal(kc->username, "admin");
	assert_string_equal(kc->password, "hunter2");
	assert_null(kc->token);
	kubeconfig_free(kc);
}

static void
test_client_cert_file_and_key_data(void **state)
{
	struct kubeconfig	*kc = load(FIX "multi.yaml", "certs", 0);

	(void)state;
	if (kc == NULL)
		fail_msg("%s", err);
	assert_string_equal(kc->cert_file, FIX "ca.crt");
	assert_int_equal(kc->key_len, 4);
	assert_memory_equal(kc->key_data, "key\n", 4);
	kubeconfig_free(kc);
	expect_refused(FIX "half-cert.yaml", NULL, 0, "go together");
}

static void
test_refusals(void **state)
{
	struct config_cluster	 c = { .name = "eks", .kubeconfig = FIX
	    "exec.yaml" };

	(void)state;
	/* What `gitopsd -t` reports. */
	assert_int_equal(kubeconfig_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"exec\", which gitopsd does not support"));
	c.kubeconfig = FIX "auth-provider.yaml";
	assert_int_equal(kubeconfig_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "\"auth-provider\""));
	c.kubeconfig = FIX "multi.yaml";
	c.context = "prod";
	assert_int_equal(kubeconfig_check(&c, err, sizeof(err)), 0);
	c.context = "nope";
	assert_int_equal(kubeconfig_check(&c, err, sizeof(err)), -1);
	assert_non_null(strstr(err, "context \"nope\" not found"));
	expect_refused(FIX "multi.yaml", "broken", 0,
	    "cluster \"nowhere\" not found");
	expect_refused(FIX "plain-http.yaml", NULL, 0, "must be an https://");
	expect_refused(FIX "no-host.yaml", NULL, 0,
	    "server \"https:///\" has no host");
	expect_refused(FIX "no-host-http.yaml", NULL, 1,
	    "server \"http://\" has no host");
	expect_refused(FIX "missing-ca.yaml", NULL, 0, "no-such-ca.crt");
	expect_refused(FIX "no-such-file.yaml", NULL, 0, "No such file");
	/* Secrets never appear in messages. */
	expect_refused(FIX "tagged-secret.yaml", NULL, 0, "line 9, column");
	assert_null(strstr(err, "sekrit"));
	expect_refused(FIX "multi.yaml", "lab", 0, "insecure");
	assert_null(strstr(err, "hunter2"));
}

static void
test_in_cluster(void **state)
{
	struct config_cluster	 c = { .name = "self",
	    .kubeconfig = "in-cluster" };
	struct kubeconfig	*kc;

	(void)state;
	/* -t cannot see the pod's files: the shape is enough. */
	assert_int_equal(kubeconfig_check(&c, err, sizeof(err)), 0);
	unsetenv("KUBERNETES_SERVICE_HOST");
	assert_null(kubeconfig_load(&c, err, sizeof(err)));
	assert_non_null(strstr(err, "KUBERNETES_SERVICE_HOST"));
	setenv("KUBERNETES_SERVICE_HOST", "fd00::1", 1);
	setenv("KUBERNETES_SERVICE_PORT", "443", 1);
	setenv(KUBECONFIG_SA_DIR_ENV, "test/fixtures/kube/serviceaccount", 1);
	kc = kubeconfig_load(&c, err, sizeof(err));
	if (kc == NULL)
		fail_msg("%s", err);
	assert_string_equal(kc->server, "https://[fd00::1]:443");
	assert_string_equal(kc->token, "sa-token-xyz");
	assert_string_equal(kc->ca_file,
	    "test/fixtures/kube/serviceaccount/ca.crt");
	assert_string_equal(kc->namespace, "gitops");
	kubeconfig_free(kc);
	unsetenv("KUBERNETES_SERVICE_HOST");
	unsetenv("KUBERNETES_SERVICE_PORT");
	unsetenv(KUBECONFIG_SA_DIR_ENV);
}

int
main(void)
{
	const struct CMUnitTest tests[] = {
		cmocka_unit_test(test_named_context_token_relative_ca),
		cmocka_unit_test(test_current_context_token_file_ca_data),
		cmocka_unit_test(test_basic_auth_and_insecure),
		cmocka_unit_test(test_client_cert_file_and_key_data),
		cmocka_unit_test(test_refusals),
		cmocka_unit_test(test_in_cluster),
	};

	return cmocka_run_group_tests(tests, NULL, NULL);
}
