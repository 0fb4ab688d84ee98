"""API tokens: the authentication class, and the user's own list / create / revoke endpoints.

Clients send ``Authorization: Token <key>`` (or ``Bearer <key>``), checked by
:class:`annotation.api.token_auth.TokenAuthentication` (a module of its own: DRF's
settings import it while ``rest_framework.views`` is still loading).
"""

from __future__ import annotations

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import extend_schema
from rest_framework import serializers, status
from rest_framework.generics import GenericAPIView
from rest_framework.response import Response

from annotation.models import ApiToken
from annotation.serializers import StrictSerializer
from annotation.services import tokens as token_services


class TokenAuthenticationScheme(OpenApiAuthenticationExtension):
    target_class = "annotation.api.token_auth.TokenAuthentication"
    name = "tokenAuth"

    def get_security_definition(self, auto_schema):
        return {
            "type": "apiKey", "in": "header", "name": "Authorization",
            "description": "`Token <key>`; create keys at /api/v1/tokens/.",
        }


class TokenOutput(serializers.ModelSerializer):
    class Meta:
        model = ApiToken
        fields = ["id", "name", "prefix", "created_at", "expires_at", "last_used_at"]
        read_only_fields = fields


class TokenCreatedOutput(TokenOutput):
    key = serializers.CharField(
        read_only=True, help_text="The token: shown only in this response, never again."
    )

    class Meta(TokenOutput.Meta):
        fields = [*TokenOutput.Meta.fields, "key"]
        read_only_fields = fields


class TokenCreateInput(StrictSerializer):
    name = serializers.CharField(max_length=100, help_text="What the token is for.")
    expires_in_days = serializers.IntegerField(
        required=False, allow_null=True, default=None, min_value=1,
        help_text="Days until the token expires (default CELLCURATE_TOKEN_TTL_DAYS).",
    )


class TokenListView(GenericAPIView):
    serializer_class = TokenOutput

    @extend_schema(responses=TokenOutput(many=True))
    def get(self, request):
        page = self.paginate_queryset(token_services.token_list(user=request.user))
        return self.get_paginated_response(TokenOutput(page, many=True).data)

    @extend_schema(request=TokenCreateInput, responses={201: TokenCreatedOutput})
    def post(self, request):
        data = TokenCreateInput(data=request.data)
        data.is_valid(raise_exception=True)
        created = token_services.token_create(
            user=request.user, name=data.validated_data["name"],
            expires_in_days=data.validated_data["expires_in_days"],
        )
        body = {**TokenOutput(created.token).data, "key": created.key}
        return Response(body, status=status.HTTP_201_CREATED)


class TokenDetailView(GenericAPIView):
    serializer_class = TokenOutput

    @extend_schema(responses={204: None})
    def delete(self, request, pk):
        token_services.token_revoke(user=request.user, token_id=pk)
        return Response(status=status.HTTP_204_NO_CONTENT)
