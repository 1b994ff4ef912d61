from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.decorators import api_view
from rest_framework.response import Response
from rest_framework.reverse import reverse

from crm.core.visibility import scope_for


class MeSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    username = serializers.CharField()
    display_name = serializers.CharField()
    language = serializers.CharField()
    time_zone = serializers.CharField()
    roles = serializers.ListField(child=serializers.CharField())
    scope = serializers.CharField()


@extend_schema(responses={200: dict})
@api_view(["GET"])
def api_root(request, format=None):
    return Response(
        {
            "me": reverse("api:me", request=request, format=format),
            "schema": reverse("api:schema", request=request, format=format),
        }
    )


@extend_schema(responses=MeSerializer)
@api_view(["GET"])
def me(request):
    user = request.user
    data = {
        "id": user.pk,
        "username": user.username,
        "display_name": user.get_display_name(),
        "language": user.language,
        "time_zone": user.time_zone,
        "roles": user.role_names,
        "scope": scope_for(user).value,
    }
    return Response(MeSerializer(data).data)
