"""The offline mock runs the same contract suite as every hosted provider (behavioural half)."""

from __future__ import annotations

from kling_core.testing import ErrorCase, ProviderContractTests


class TestMockContract(ProviderContractTests):
    provider_name = "mock"
    # The mock's documented scripted failures (plugins/kling_core_plugins/mock/failures.py), as canonical errors.
    error_cases = (
        ErrorCase("rate_limited", {"fail": "rate_limited"}, "RateLimitedError", retryable=True),
        ErrorCase("insufficient_credits", {"fail": "insufficient_credits"}, "InsufficientCreditsError", retryable=False),
        ErrorCase("server_error", {"fail": "server_error"}, "ProviderError", retryable=True),
        ErrorCase("content_policy", {"fail": "content_policy"}, "ContentPolicyError", retryable=False),
        ErrorCase("completed_with_error", {"fail": "completed_with_error"}, "ProviderValidationError", retryable=False),
    )
    sample_job_id = "mock-00000000000000000000"
